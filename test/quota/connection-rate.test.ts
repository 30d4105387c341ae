/**
 * RATE_CONNECTIONS_PER_MIN_PER_IP: every visit of a session stores connected + disconnected, so one address opens at most
 * N sockets a minute, even to one live session. Regression for b6bc582 (32,000 events in 30 s from one address).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually, startApp, TestClient, type RunningApp } from '../support/app.js'
import { fate } from '../support/fate.js'
import { flushedEvents } from '../support/reliability.js'

let server: RunningApp
const open: TestClient[] = []
beforeAll(async () => {
  server = await startApp({ env: { RATE_CONNECTIONS_PER_MIN_PER_IP: '3', DISCONNECT_GRACE_MS: '600000' } })
})
afterAll(async () => {
  await Promise.all(open.map((c) => c.close()))
  await server?.close()
})

const connect = async (sessionId: string, localAddress: string): Promise<TestClient> => {
  const c = await TestClient.connect(server.wsUrl(sessionId), { localAddress })
  open.push(c)
  return c
}

describe('RATE_CONNECTIONS_PER_MIN_PER_IP', () => {
  it('the 4th socket of an address in a minute, to the same live session, gets rate_limited + retryAfterMs + 1013 and stores nothing; another address connects', async () => {
    const id = `connrate-${process.pid}`
    // Three visits of one session from 127.0.0.1, each opened and closed in turn.
    for (let i = 0; i < 3; i++) {
      const c = await connect(id, '127.0.0.1')
      expect(await fate(c)).toMatchObject({ joined: true })
      await c.close()
      // The server has let it go (its disconnected event recorded) before the next one opens.
      await eventually(() => server.app.services.hub.session(id)?.socketCount === 0)
    }
    expect(server.app.services.hub.session(id)).toBeDefined()
    const before = await flushedEvents(server, id)
    expect(before.map((e) => e.type)).toEqual(['connected', 'disconnected', 'connected', 'disconnected', 'connected', 'disconnected'])

    const fourth = await connect(id, '127.0.0.1')
    const refused = await fate(fourth)
    expect(refused).toEqual({ closed: 1013, frames: [expect.objectContaining({ type: 'error', code: 'rate_limited', retryable: true })] })
    const { retryAfterMs } = refused.frames[0]
    expect(retryAfterMs).toBeGreaterThan(0)
    expect(retryAfterMs).toBeLessThanOrEqual(60_000)
    // No connected (or disconnected) event for it, and the session holds no socket of it.
    expect(await flushedEvents(server, id)).toEqual(before)
    expect(server.app.services.hub.session(id)!.socketCount).toBe(0)

    // Another address has its own count.
    const other = await connect(id, '127.0.0.2')
    const joined = await fate(other)
    expect(joined).toMatchObject({ joined: true })
    expect(other.ofType('error')).toEqual([])
    const after = await flushedEvents(server, id)
    expect(after.slice(0, before.length)).toEqual(before)
    expect(after.slice(before.length).map((e) => e.type)).toEqual(['connected'])
  })
})
