/** Idempotent resend: a user_message whose clientId the session has seen is answered with the stored event, never run twice. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startApp, type RunningApp, TestClient } from '../support/app.js'
import { deltaText, flushedEvents, isDense } from '../support/reliability.js'

let server: RunningApp
let n = 0
const newId = () => `idem-${process.pid}-${n++}`

beforeAll(async () => {
  // The writer's longest batching delay: a user_message stays not-yet-durable for up to 50 ms.
  server = await startApp({ env: { OFFLINE_TOKEN_DELAY_MS: '10', DISCONNECT_GRACE_MS: '600000', WRITER_FLUSH_MS: '50' } })
})
afterAll(async () => { await server.close() })

/** A ping/pong round trip: every frame sent before it has been handled once the pong is back. */
async function roundTrip (c: TestClient): Promise<void> {
  const pongs = c.ofType('pong').length
  c.send({ type: 'ping' })
  await c.waitCount(pongs + 1, (f) => f.type === 'pong')
}

const userMessages = async (id: string) => (await flushedEvents(server, id)).filter((e) => e.type === 'user_message')

describe('a repeated clientId', () => {
  it('after the turn: the sender gets the stored user_message, nothing runs, other sockets hear nothing', async () => {
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    const other = await TestClient.connect(server.wsUrl(id))
    a.send({ type: 'user_message', content: 'only once please', clientId: 'c-1' })
    const first = await a.waitFor((f) => f.type === 'user_message')
    await a.waitTurnEnd(first.turnId)
    await other.waitTurnEnd(first.turnId)
    const [aBefore, otherBefore] = [a.frames.length, other.frames.length]

    a.send({ type: 'user_message', content: 'only once please', clientId: 'c-1' })
    await roundTrip(a)
    expect(a.frames.slice(aBefore).map((f) => f.type)).toEqual(['user_message', 'pong'])
    expect(a.frames[aBefore]).toEqual(first)
    await roundTrip(other)
    expect(other.frames.slice(otherBefore).map((f) => f.type)).toEqual(['pong'])
    // Not run: a new message is not busy, and the log has each message once.
    a.send({ type: 'user_message', content: 'a second, different message', clientId: 'c-2' })
    await a.waitCount(2, (f) => f.type === 'assistant_message')
    expect(a.ofType('error')).toEqual([])
    expect((await userMessages(id)).map((e) => e.clientId)).toEqual(['c-1', 'c-2'])
    await Promise.all([a.close(), other.close()])
  })

  it('while its turn runs: the stored event, not busy, and the turn ends once', async () => {
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    a.send({ type: 'user_message', content: 'running now', clientId: 'r-1' })
    const first = await a.waitFor((f) => f.type === 'user_message')
    await a.waitFor((f) => f.type === 'delta' && f.index === 1)
    const before = a.frames.length
    a.send({ type: 'user_message', content: 'running now', clientId: 'r-1' })
    const again = await a.waitFor((f) => f.type === 'user_message', { from: before })
    expect(again).toEqual(first)
    const end = await a.waitTurnEnd(first.turnId)
    expect(a.ofType('error')).toEqual([])
    expect(a.ofType('assistant_message')).toHaveLength(1)
    expect(deltaText(a.frames, first.turnId)).toBe(end.content)
    expect(await userMessages(id)).toHaveLength(1)
    await a.close()
  })

  it('after a reconnect (mid-turn): the new socket gets the stored event; the turn is not run again', async () => {
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    a.send({ type: 'user_message', content: 'survive a reconnect', clientId: 'rc-1' })
    const first = await a.waitFor((f) => f.type === 'user_message')
    await a.waitFor((f) => f.type === 'delta')
    await a.terminate()
    const b = await TestClient.connect(server.wsUrl(id))
    await b.waitFor((f) => f.type === 'connected')
    b.send({ type: 'user_message', content: 'survive a reconnect', clientId: 'rc-1' })
    const again = await b.waitFor((f) => f.type === 'user_message')
    expect(again).toEqual(first)
    await b.waitTurnEnd(first.turnId)
    expect(b.ofType('error')).toEqual([])
    expect(await userMessages(id)).toHaveLength(1)
    await b.close()
  })

  it('sent twice back to back (before the first is durable): one turn, and the socket gets the event once, in seq order', async () => {
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    const other = await TestClient.connect(server.wsUrl(id))
    await a.waitCount(2, (f) => f.type === 'connected')
    const frame = JSON.stringify({ type: 'user_message', content: 'double click', clientId: 'dbl' })
    a.send(frame)
    a.send(frame)
    other.send(frame) // another tab resending the same message at the same moment
    const end = await a.waitTurnEnd()
    await other.waitTurnEnd(end.turnId)
    await roundTrip(a)
    await roundTrip(other)
    expect(a.ofType('error')).toEqual([])
    expect(other.ofType('error')).toEqual([])
    // A never gets an ack before the event is durable and in order: exactly one copy, right after the connected events.
    expect(a.ofType('user_message')).toHaveLength(1)
    expect(other.ofType('user_message')).toHaveLength(1)
    const seqs = a.stored().map((f) => f.seq)
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
    expect(new Set(seqs).size).toBe(seqs.length)
    const log = await flushedEvents(server, id)
    expect(isDense(log)).toBe(true)
    expect(log.filter((e) => e.type === 'user_message')).toHaveLength(1)
    expect(log.filter((e) => e.type === 'assistant_message')).toHaveLength(1)
    await Promise.all([a.close(), other.close()])
  })
})
