/** What a socket's frames act on once attached: a live session here, or (cluster mode) one another instance owns. */
import type { ClientFrame } from '../protocol.js'
import type { Peer } from './peer.js'
import type { ChatSession } from './session.js'

/** The frames a session acts on; `auth` is the socket's own business (its credential lives where the socket is). */
export type SessionFrame = Exclude<ClientFrame, { type: 'auth' }>

export interface SessionHandle {
  /** Acts on one frame of `peer`; resolves once the frame is admitted or refused (the socket's next frame waits). */
  handle (peer: Peer, frame: SessionFrame): Promise<void>
  /** The socket closed: records its disconnect (the last one out starts the disconnect grace). */
  detach (peer: Peer, why: string): void
}

/** One frame of an attached socket, on the session that owns it. */
export async function dispatchFrame (session: ChatSession, peer: Peer, frame: SessionFrame): Promise<void> {
  switch (frame.type) {
    case 'ping': peer.send({ type: 'pong' }); return
    case 'cancel': session.cancel(peer, frame.turnId); return
    case 'tool_approval': session.approvals.answer(peer, frame); return
    case 'user_message': await session.userMessage(peer, frame)
  }
}
