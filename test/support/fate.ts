/** What became of a freshly opened socket, whichever comes first: it joined its session, or it was closed (refused). */
import type { Frame, TestClient } from './app.js'

export type Fate = { joined: true; frames: Frame[] } | { closed: number; frames: Frame[] }

/**
 * Resolves at the socket's `connected` frame (joined) or at its close, so a test expecting a refusal fails at once
 * (with what happened instead) rather than waiting for a close that never comes.
 */
export async function fate (client: TestClient, joinedWhen: (f: Frame) => boolean = (f) => f.type === 'connected'): Promise<Fate> {
  return await Promise.race([
    client.closed.then(({ code }) => ({ closed: code, frames: client.frames })),
    // Rejects on its own only after a timeout with neither: a close settles the race first (its handler is queued first).
    client.waitFor(joinedWhen).then(() => ({ joined: true as const, frames: client.frames }))
  ])
}
