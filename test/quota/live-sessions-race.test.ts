/**
 * MAX_LIVE_SESSIONS under concurrency with auth on: sockets that pass the first check together and then wait for the
 * owner's claim must not all bring a session to life. Regression for b6bc582 (60 at once held 23 live under a limit of 5).
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../src/store/memory.js'
import type { SessionRepository } from '../../src/store/types.js'
import { startApp, type RunningApp, type TestClient } from '../support/app.js'
import { authEnv, connectAs, newUser } from '../support/auth.js'
import { fate } from '../support/fate.js'

const LIMIT = 5
const USERS = 20
let server: RunningApp
const store = createMemoryStore()
// Every claim of an owner takes ~50 ms: the window in which sockets that passed the first check wait together.
// The store's methods live on its prototype, so it is wrapped, not spread.
const slowClaims: SessionRepository = Object.assign(Object.create(store) as SessionRepository, {
  claimSession: async (o: Parameters<SessionRepository['claimSession']>[0]) => { await delay(50); return await store.claimSession(o) }
})
const clients: TestClient[] = []

beforeAll(async () => {
  server = await startApp({ env: authEnv({ MAX_LIVE_SESSIONS: String(LIMIT), DISCONNECT_GRACE_MS: '600000' }), deps: { store: slowClaims } })
})
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()))
  await server?.close()
})

describe('MAX_LIVE_SESSIONS with slow owner claims', () => {
  it(`${USERS} users opening ${USERS} new sessions at once: exactly ${LIMIT} get a session, the rest busy_server + 1013, never more than ${LIMIT} live`, async () => {
    const { hub } = server.app.services
    const users = await Promise.all(Array.from({ length: USERS }, (_, i) => newUser(`live${i}`)))
    const ids = users.map(() => `live-${randomUUID()}`)
    // hub.liveCount as each `session` frame arrives (read in the client's message listener, same process).
    const liveAtSession: number[] = []
    const sockets = await Promise.all(users.map(async (user, i) => {
      const c = await connectAs(server, user, ids[i])
      clients.push(c)
      c.ws.on('message', (data) => { if ((JSON.parse(data.toString()) as { type: string }).type === 'session') liveAtSession.push(hub.liveCount) })
      return c
    }))
    const fates = await Promise.all(sockets.map((c) => fate(c, (f) => f.type === 'session')))

    const joined = fates.flatMap((f, i) => ('joined' in f ? [i] : []))
    const refused = fates.flatMap((f, i) => ('closed' in f ? [f] : []))
    expect({ joined: joined.length, refused: refused.length }).toEqual({ joined: LIMIT, refused: USERS - LIMIT })
    for (const r of refused) {
      expect(r).toEqual({ closed: 1013, frames: [expect.objectContaining({ type: 'error', code: 'busy_server', retryable: true })] })
      expect(r.frames[0].retryAfterMs).toBeGreaterThan(0)
    }
    // Each joined socket got its own session, first frame `session` for the id it asked for.
    for (const i of joined) expect(sockets[i].frames[0]).toMatchObject({ type: 'session', sessionId: ids[i] })
    expect(liveAtSession).toHaveLength(LIMIT)
    expect(Math.max(...liveAtSession)).toBeLessThanOrEqual(LIMIT)
    expect(hub.liveCount).toBe(LIMIT)
    // The live ones are exactly the joined sessions.
    expect(ids.filter((id) => hub.session(id) !== undefined).sort()).toEqual(joined.map((i) => ids[i]).sort())
  })
})
