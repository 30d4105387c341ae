/** OFFLINE_FAULT=fail | slow:<ms> | cut:<n>, each as a client sees it over the socket. */
import { afterAll, describe, expect, it } from 'vitest'
import { startApp, type RunningApp, TestClient } from '../support/app.js'
import { deltaText, flushedEvents, isDense } from '../support/reliability.js'

const apps: RunningApp[] = []
async function app (fault: string): Promise<RunningApp> {
  const server = await startApp({ env: { OFFLINE_FAULT: fault, OFFLINE_TOKEN_DELAY_MS: '2', DISCONNECT_GRACE_MS: '600000' } })
  apps.push(server)
  return server
}
afterAll(async () => { await Promise.all(apps.map((a) => a.close())) })
let n = 0
const newId = () => `off-${process.pid}-${n++}`

describe('OFFLINE_FAULT', () => {
  it('fail: error llm_unavailable (retryable), stored, then assistant_message error with no text; the socket stays usable', async () => {
    const server = await app('fail')
    const id = newId()
    const c = await TestClient.connect(server.wsUrl(id))
    c.send({ type: 'user_message', content: 'hello' })
    const end = await c.waitTurnEnd()
    expect(end).toMatchObject({ finishReason: 'error', content: '' })
    expect(c.ofType('delta')).toHaveLength(0)
    expect(c.ofType('error')).toEqual([expect.objectContaining({ code: 'llm_unavailable', retryable: true, turnId: end.turnId, seq: end.seq - 1 })])
    c.send({ type: 'ping' })
    await c.waitFor((f) => f.type === 'pong')
    const log = await flushedEvents(server, id)
    expect(log.map((e) => e.type)).toEqual(['connected', 'user_message', 'error', 'assistant_message'])
    await c.close()
  })

  it('slow:<ms>: nothing for that long, then the normal answer', async () => {
    const server = await app('slow:400')
    const c = await TestClient.connect(server.wsUrl(newId()))
    c.send({ type: 'user_message', content: 'take your time' })
    await c.waitFor((f) => f.type === 'user_message')
    const asked = Date.now()
    await c.waitFor((f) => f.type === 'delta')
    expect(Date.now() - asked).toBeGreaterThanOrEqual(350)
    const end = await c.waitTurnEnd()
    expect(end.finishReason).toBe('stop')
    expect(end.content).toBe(deltaText(c.frames, end.turnId))
    expect(c.ofType('error')).toEqual([])
    await c.close()
  })

  it('slow:<ms>: a cancel during the wait ends the turn then, not when the wait is over', async () => {
    // A wait far longer than the test may take: the turn can only end in time if the cancel cut it short.
    const server = await app('slow:600000')
    const c = await TestClient.connect(server.wsUrl(newId()))
    c.send({ type: 'user_message', content: 'never mind' })
    const asked = await c.waitFor((f) => f.type === 'user_message')
    c.send({ type: 'cancel', turnId: asked.turnId })
    const stopped = await c.waitTurnEnd(asked.turnId)
    expect(stopped).toMatchObject({ finishReason: 'cancelled', content: '' })
    expect(c.ofType('delta')).toEqual([])
    await c.close()
  })

  it('cut:<n>: n deltas, then error llm_error and assistant_message error holding exactly those n tokens', async () => {
    const server = await app('cut:3')
    const id = newId()
    const c = await TestClient.connect(server.wsUrl(id))
    c.send({ type: 'user_message', content: 'talk to me' })
    const end = await c.waitTurnEnd()
    const deltas = c.ofType('delta')
    expect(deltas.map((d) => d.index)).toEqual([0, 1, 2])
    expect(end).toMatchObject({ finishReason: 'error', content: deltaText(c.frames, end.turnId) })
    expect(end.content.split(' ').filter(Boolean)).toHaveLength(3)
    expect(c.ofType('error')).toEqual([expect.objectContaining({ code: 'llm_error', retryable: true, turnId: end.turnId })])
    // Every turn is cut the same way, and each is closed once: the session goes on.
    c.send({ type: 'user_message', content: 'again' })
    await c.waitCount(2, (f) => f.type === 'assistant_message')
    const log = await flushedEvents(server, id)
    expect(isDense(log)).toBe(true)
    expect(log.filter((e) => e.type === 'assistant_message').map((e) => e.finishReason)).toEqual(['error', 'error'])
    await c.close()
  })
})
