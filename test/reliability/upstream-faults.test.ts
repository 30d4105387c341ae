/** Upstream faults through the real openai SDK: each closes the turn with exactly one assistant_message and the session stays usable. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startApp, type Frame, type RunningApp, TestClient } from '../support/app.js'
import { fail, sse, startFakeOpenAI, textChunks, type FakeOpenAI, type FakeReply } from '../support/fake-openai.js'
import { deltaText, flushedEvents, isDense } from '../support/reliability.js'

let fake: FakeOpenAI
let server: RunningApp
let n = 0
const newId = () => `up-${process.pid}-${n++}`
// The SDK honours retry-after-ms: keeps its retries fast without changing what is retried.
const quick = { 'retry-after-ms': '5' }

beforeAll(async () => {
  fake = await startFakeOpenAI()
  server = await startApp({
    env: {
      LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model',
      LLM_MAX_RETRIES: '2', LLM_TIMEOUT_MS: '300', DISCONNECT_GRACE_MS: '600000'
    }
  })
})
afterAll(async () => {
  await server.close()
  await fake.close()
})
afterEach(() => { expect(fake.pending()).toBe(0) })

/**
 * Runs one faulty turn then one good turn on the same socket. Returns the faulty turn's frames
 * and stored events, after checking: exactly one assistant_message per turn, the stored error,
 * the partial text = the deltas, the next turn answering normally, the log dense.
 */
async function faultyThenFine (faults: FakeReply[]): Promise<{ end: Frame; error: Frame; client: TestClient; requests: number }> {
  const id = newId()
  const from = fake.requests.length
  fake.script(...faults, sse(textChunks('Back to normal.')))
  const client = await TestClient.connect(server.wsUrl(id))
  client.send({ type: 'user_message', content: 'first try' })
  const end = await client.waitTurnEnd()
  const requests = fake.requests.length - from
  const errors = client.ofType('error')
  expect(errors).toHaveLength(1)
  const error = errors[0]
  expect(error).toMatchObject({ turnId: end.turnId, retryable: true })
  expect(typeof error.seq).toBe('number')
  expect(error.seq).toBe(end.seq - 1)
  expect(end.finishReason).toBe('error')
  expect(end.content).toBe(deltaText(client.frames, end.turnId))

  client.send({ type: 'user_message', content: 'second try' })
  await client.waitCount(2, (f) => f.type === 'assistant_message')
  const next = client.ofType('assistant_message')[1]
  expect(next).toMatchObject({ finishReason: 'stop', content: 'Back to normal.' })
  const log = await flushedEvents(server, id)
  expect(isDense(log)).toBe(true)
  expect(log.map((e) => e.type)).toEqual(['connected', 'user_message', 'error', 'assistant_message', 'user_message', 'assistant_message'])
  expect(log[3]).toMatchObject({ finishReason: 'error', content: end.content })
  expect(log[2]).toMatchObject({ code: error.code, turnId: end.turnId })
  await client.close()
  return { end, error, client, requests }
}

describe('before the first token', () => {
  it('429 on every try: the SDK retries (LLM_MAX_RETRIES 2 → 3 requests), then llm_unavailable, retryable', async () => {
    const { error, end, requests } = await faultyThenFine([fail(429, undefined, quick), fail(429, undefined, quick), fail(429, undefined, quick)])
    expect(requests).toBe(3)
    expect(error.code).toBe('llm_unavailable')
    expect(error.message).toMatch(/429/)
    expect(end.content).toBe('')
  })

  it.each([[500], [502], [503]])('%i on every try: retried, then llm_unavailable', async (status) => {
    const { error, requests } = await faultyThenFine([fail(status, undefined, quick), fail(status, undefined, quick), fail(status, undefined, quick)])
    expect(requests).toBe(3)
    expect(error).toMatchObject({ code: 'llm_unavailable', retryable: true })
    expect(error.message).toContain(String(status))
  })

  it('a 503 that clears on the retry: the turn just succeeds, nothing stored as an error', async () => {
    const id = newId()
    const from = fake.requests.length
    fake.script(fail(503, undefined, quick), sse(textChunks('Recovered on retry.')))
    const client = await TestClient.connect(server.wsUrl(id))
    client.send({ type: 'user_message', content: 'hello' })
    const end = await client.waitTurnEnd()
    expect(end).toMatchObject({ finishReason: 'stop', content: 'Recovered on retry.' })
    expect(fake.requests.length - from).toBe(2)
    expect(client.ofType('error')).toEqual([])
    await client.close()
  })

  it('no response headers within LLM_TIMEOUT_MS: each try is abandoned (the fake sees the client leave), then llm_unavailable', async () => {
    const from = fake.requests.length
    const slow = sse(textChunks('too late'), { headersDelayMs: 2_000 })
    const { error } = await faultyThenFine([slow, slow, slow])
    expect(error).toMatchObject({ code: 'llm_unavailable', retryable: true })
    expect(error.message).toMatch(/timed out after 300 ms/)
    for (let i = 0; i < 3; i++) expect((await fake.clientClosed(from + i)).aborted).toBe(true)
  })

  it('headers but no first chunk within LLM_TIMEOUT_MS: the request is aborted, llm_unavailable', async () => {
    const from = fake.requests.length
    const { error, requests } = await faultyThenFine([sse(textChunks('too late'), { firstChunkDelayMs: 2_000 })])
    expect(requests).toBe(1) // the response had begun: the SDK does not retry
    expect(error).toMatchObject({ code: 'llm_unavailable', retryable: true })
    expect(error.message).toMatch(/no data within 300 ms/)
    expect((await fake.clientClosed(from)).aborted).toBe(true)
  })

  it('a malformed first chunk: llm_unavailable, nothing streamed', async () => {
    const { error, end } = await faultyThenFine([sse(textChunks('never shown'), { malformedAt: 0 })])
    expect(error.code).toBe('llm_unavailable')
    expect(error.message).toMatch(/malformed/)
    expect(end.content).toBe('')
  })
})

describe('mid-answer', () => {
  it('the stream is cut: llm_error, the partial text stored', async () => {
    const { error, end } = await faultyThenFine([sse(textChunks('one two three four five six seven'), { cutAfter: 4 })])
    expect(error.code).toBe('llm_error')
    expect(end.content).toBe('one two three ')
  })

  it('a malformed chunk: llm_error, the partial text stored', async () => {
    const { error, end } = await faultyThenFine([sse(textChunks('alpha beta gamma delta'), { malformedAt: 3 })])
    expect(error.code).toBe('llm_error')
    expect(error.message).toMatch(/malformed/)
    expect(end.content).toBe('alpha beta ')
  })

  it('the stream stalls longer than LLM_TIMEOUT_MS: aborted, llm_error, the partial text stored', async () => {
    const from = fake.requests.length
    const { error, end } = await faultyThenFine([sse(textChunks('steady then silent forever'), { hangAfter: 3 })])
    expect(error.code).toBe('llm_error')
    expect(error.message).toMatch(/stalled/)
    expect(end.content).toBe('steady then ')
    expect((await fake.clientClosed(from)).aborted).toBe(true)
  })

  it('the body ends without a finish reason or [DONE]: llm_error, the partial text stored', async () => {
    const chunks = textChunks('cut by a proxy')
    const { error, end } = await faultyThenFine([sse(chunks.slice(0, -1), { done: false })])
    expect(error.code).toBe('llm_error')
    expect(end.content).toBe('cut by a proxy')
  })
})
