/**
 * Metrics with a turn queue (MAX_CONCURRENT_TURNS=1): rtb_turns_running counts running turns only, and a turn cancelled
 * while queued counts in rtb_turns_total. Regression for b6bc582 (queued turns were counted running; a turn closed before
 * it ran was never counted).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { joinDeltas, startApp, TestClient, type RunningApp } from '../support/app.js'
import { sse, startFakeOpenAI, textChunks, type FakeOpenAI } from '../support/fake-openai.js'
import { changes, parseMetrics, sample, type Samples } from '../support/prom.js'
import { flushedEvents } from '../support/reliability.js'

let fake: FakeOpenAI
let server: RunningApp
// ~2 s of stream (25 words, 80 ms apart): the running turn outlasts everything done while it runs.
const ANSWER = Array.from({ length: 25 }, (_, i) => `w${i} `).join('')

beforeAll(async () => {
  fake = await startFakeOpenAI()
  server = await startApp({
    env: {
      LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model',
      LLM_MAX_RETRIES: '0', DISCONNECT_GRACE_MS: '600000', MAX_CONCURRENT_TURNS: '1'
    }
  })
})
afterAll(async () => {
  await server?.close()
  await fake?.close()
})

async function scrape (): Promise<Samples> {
  const res = await server.app.inject({ url: '/metrics' })
  expect(res.statusCode).toBe(200)
  return parseMetrics(res.body)
}
async function connect (sessionId: string, localAddress: string): Promise<TestClient> {
  const c = await TestClient.connect(server.wsUrl(sessionId), { localAddress })
  await c.waitFor((f) => f.type === 'connected')
  return c
}
const queuedOn = (c: TestClient) => c.waitFor((f) => f.type === 'queued').then(() => c)

describe('rtb_turns_running and rtb_turns_total with a queued turn', () => {
  it('one running + one queued scrapes as 1 running; the queued one cancelled counts cancelled exactly once; then the first finishes', async () => {
    const [a, b] = await Promise.all([connect(`qm-a-${process.pid}`, '127.0.0.41'), connect(`qm-b-${process.pid}`, '127.0.0.42')])
    fake.script(sse(textChunks(ANSWER), { delayMs: 80 }), sse(textChunks('never asked')))
    const first = fake.requests.length
    const start = await scrape()
    expect(sample(start, 'rtb_turns_running')).toBe(0)

    a.send({ type: 'user_message', content: 'from a' })
    b.send({ type: 'user_message', content: 'from b' })
    // Whichever got the slot runs; the other is queued.
    const queued = await Promise.any([queuedOn(a), queuedOn(b)])
    const running = queued === a ? b : a
    const upstream = await fake.request(first)
    expect(upstream.body.messages.at(-1).content).toBe(running === a ? 'from a' : 'from b')
    await running.waitFor((f) => f.type === 'delta')

    const during = await scrape()
    expect(sample(during, 'rtb_turns_running')).toBe(1)
    expect(sample(during, 'rtb_sessions_live')).toBe(2)
    expect(server.app.services.slots.stats()).toMatchObject({ running: 1, queued: 1 })

    const queuedTurn = queued.ofType('queued')[0].turnId as string
    queued.send({ type: 'cancel' })
    const end = await queued.waitTurnEnd(queuedTurn)
    expect(end).toMatchObject({ type: 'assistant_message', turnId: queuedTurn, finishReason: 'cancelled', content: '' })
    const afterCancel = await scrape()
    // Still mid-stream: only the cancel moved the turn counters.
    expect(running.ofType('assistant_message')).toEqual([])
    expect(changes(start, afterCancel, 'rtb_turns_total')).toEqual({ 'rtb_turns_total{finish_reason="cancelled"}': 1 })
    expect(sample(afterCancel, 'rtb_turns_running')).toBe(1)
    // The queued turn never reached upstream.
    expect(fake.requests.length - first).toBe(1)

    const done = await running.waitTurnEnd()
    expect(done).toMatchObject({ finishReason: 'stop', content: ANSWER })
    expect(joinDeltas(running.frames, done.turnId)).toBe(ANSWER)
    const last = await scrape()
    expect(changes(start, last, 'rtb_turns_total')).toEqual({
      'rtb_turns_total{finish_reason="cancelled"}': 1,
      'rtb_turns_total{finish_reason="stop"}': 1
    })
    expect(sample(last, 'rtb_turns_running')).toBe(0)
    expect(fake.requests.length - first).toBe(1)

    // The stored log of the queued session: its message and its one cancelled assistant_message, in order.
    const log = await flushedEvents(server, queued.ofType('session')[0].sessionId)
    expect(log.filter((e) => e.turnId === queuedTurn).map((e) => [e.type, e.finishReason])).toEqual([
      ['user_message', undefined], ['assistant_message', 'cancelled']
    ])
    await Promise.all([a.close(), b.close()])
  })
})
