/** The OpenAI model against the fake server, through the real SDK: streaming, error mapping, timeouts, abort. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { createLeanFetch } from '../../src/llm/lean-fetch.js'
import { createOpenAIModel, providerLabel, type OpenAIModelOptions } from '../../src/llm/openai-model.js'
import { ModelError, type ModelEvent } from '../../src/llm/types.js'
import {
  completion, emptyChoicesChunk, fail, json, sse, startFakeOpenAI, textChunks, toolCallChunks, usageChunk, type FakeOpenAI
} from '../support/fake-openai.js'
import { eventually } from '../support/app.js'

const logger = pino({ level: 'silent' })
let fake: FakeOpenAI

beforeAll(async () => { fake = await startFakeOpenAI() })
afterAll(async () => { await fake.close() })
beforeEach(() => { expect(fake.pending()).toBe(0) })

const model = (over: Partial<OpenAIModelOptions> = {}) =>
  createOpenAIModel({ apiKey: 'test-key', baseURL: fake.url, model: 'fake-model', timeoutMs: 2_000, maxRetries: 0, logger, ...over })

const user = (content: string) => [{ role: 'user' as const, content }]

async function collect (events: AsyncIterable<ModelEvent>, onEvent?: (e: ModelEvent) => void): Promise<ModelEvent[]> {
  const out: ModelEvent[] = []
  for await (const e of events) { out.push(e); onEvent?.(e) }
  return out
}

const texts = (events: ModelEvent[]) => events.flatMap((e) => (e.type === 'text' ? [e.text] : []))

describe('openai model: streaming', () => {
  it('streams text deltas in order, sends stream options, reports usage from the trailing chunk', async () => {
    fake.script(sse([emptyChoicesChunk(), ...textChunks('Hello there, friend.'), usageChunk({ prompt: 11, completion: 4 })]))
    const n = fake.requests.length
    const events = await collect(model({ temperature: 0.3, maxTokens: 100 }).stream({ messages: user('hi'), tools: [], signal: new AbortController().signal }))
    expect(texts(events).join('')).toBe('Hello there, friend.')
    expect(events.at(-1)).toEqual({ type: 'finish', reason: 'stop', usage: { promptTokens: 11, completionTokens: 4, totalTokens: 15 } })
    const body = fake.requests[n].body
    expect(body).toMatchObject({ model: 'fake-model', stream: true, stream_options: { include_usage: true }, temperature: 0.3, max_tokens: 100 })
    expect(body.messages).toEqual([{ role: 'user', content: 'hi' }])
    expect(body.tools).toBeUndefined()
    expect(fake.requests[n].headers.authorization).toBe('Bearer test-key')
  })

  it('assembles tool-call arguments split over several chunks and emits the calls before finish', async () => {
    const args = JSON.stringify({ userId: 'alice', verbose: true })
    fake.script(sse(toolCallChunks([
      { id: 'call_a', name: 'fetch_user_profile', args },
      { id: 'call_b', name: 'get_system_metrics', args: '{}' }
    ], { splitArgsInto: 4 })))
    const tools = [{ type: 'function' as const, function: { name: 'fetch_user_profile', description: 'd', parameters: { type: 'object' } } }]
    const events = await collect(model().stream({ messages: user('who is alice'), tools, signal: new AbortController().signal }))
    expect(events).toEqual([
      { type: 'tool_call', call: { id: 'call_a', name: 'fetch_user_profile', arguments: args } },
      { type: 'tool_call', call: { id: 'call_b', name: 'get_system_metrics', arguments: '{}' } },
      { type: 'finish', reason: 'tool_calls' }
    ])
    expect(fake.requests.at(-1)!.body.tools).toEqual(tools)
  })

  it('parses an SSE event that arrives split across two TCP writes (inside a multi-byte character)', async () => {
    const text = 'Grüße aus Köln — ünïcödé ✓ fine'
    fake.script(sse(textChunks(text, { perChunk: 7 }), { splitAt: 2 }))
    const events = await collect(model().stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(texts(events).join('')).toBe(text)
    expect(events.at(-1)).toMatchObject({ type: 'finish', reason: 'stop' })
  })

  it('maps finish_reason length', async () => {
    fake.script(sse(textChunks('cut short', { finishReason: 'length' })))
    const events = await collect(model().stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(events.at(-1)).toEqual({ type: 'finish', reason: 'length' })
  })
})

describe('openai model: failures', () => {
  it('500 → llm_unavailable retryable, after the SDK retried', async () => {
    fake.script(fail(500, undefined, { 'retry-after-ms': '5' }), fail(503))
    const n = fake.requests.length
    const events = await collect(model({ maxRetries: 1 }).stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ type: 'error', code: 'llm_unavailable', retryable: true })
    expect((events[0] as { message: string }).message).toMatch(/unavailable \(503\) \(after 1 retry\)/)
    expect(fake.requests.length - n).toBe(2)
  })

  it('401 → llm_unavailable, not retryable, says the endpoint refused', async () => {
    fake.script(fail(401, { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } }))
    const n = fake.requests.length
    const events = await collect(model({ maxRetries: 2 }).stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(events).toEqual([{ type: 'error', code: 'llm_unavailable', retryable: false, message: 'model endpoint refused the request (401): Incorrect API key provided' }])
    expect(fake.requests.length - n).toBe(1)
  })

  it('connection refused → llm_unavailable retryable', async () => {
    const events = await collect(model({ baseURL: 'http://127.0.0.1:1/v1' }).stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(events).toEqual([expect.objectContaining({ type: 'error', code: 'llm_unavailable', retryable: true })])
    expect((events[0] as { message: string }).message).toMatch(/could not reach the model endpoint/)
  })

  it('stream cut mid-answer → partial text, then llm_error', async () => {
    fake.script(sse(textChunks('one two three four five six'), { cutAfter: 4 }))
    const events = await collect(model().stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(texts(events).join('')).toBe('one two three ')
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'llm_error', retryable: true })
    expect(events.filter((e) => e.type === 'finish')).toHaveLength(0)
  })

  it('malformed chunk after output → llm_error', async () => {
    fake.script(sse(textChunks('alpha beta gamma'), { malformedAt: 2 }))
    const events = await collect(model().stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(texts(events).join('')).toBe('alpha ')
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'llm_error' })
    expect((events.at(-1) as { message: string }).message).toMatch(/malformed chunk/)
  })

  it.each([['the lean fetch', true], ['the global fetch', false]])('an event that never ends (no newline, endless bytes) fails the turn at 4 Mi characters instead of filling memory, with %s', async (_name, lean) => {
    fake.script(sse(textChunks('before the junk'), { endlessLine: 64 * 1024 }))
    const n = fake.requests.length
    const events = await collect(model(lean ? { fetch: createLeanFetch() } : {}).stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(texts(events).join('')).toBe('before the junk')
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'llm_error', retryable: true })
    expect((events.at(-1) as { message: string }).message).toMatch(/^malformed chunk from the model endpoint: an event of the stream is over 4194304 characters/)
    await eventually(() => fake.requests[n].aborted || undefined)
    // The upstream was cut near the bound, not read on: at most a few writes (and socket buffers) past 4 MiB.
    expect(fake.requests[n].endlessBytes).toBeGreaterThan(4 * 1024 * 1024)
    expect(fake.requests[n].endlessBytes).toBeLessThan(16 * 1024 * 1024)
  })

  it('stream that ends without a finish reason → llm_error, not a silent success', async () => {
    fake.script(sse(textChunks('half an').slice(0, 3), { done: false }))
    const events = await collect(model().stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(texts(events).join('')).toBe('half an')
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'llm_error', message: 'model stream ended without a finish reason' })
  })

  it('slow response headers beyond LLM_TIMEOUT_MS → llm_unavailable (SDK timeout), upstream aborted', async () => {
    fake.script(sse(textChunks('too late'), { headersDelayMs: 5_000 }))
    const n = fake.requests.length
    const started = Date.now()
    const events = await collect(model({ timeoutMs: 200 }).stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(events).toEqual([{ type: 'error', code: 'llm_unavailable', retryable: true, message: 'model endpoint timed out after 200 ms' }])
    // Well before the headers would come: the 200 ms timeout ended it, whatever the load on the machine.
    expect(Date.now() - started).toBeLessThan(4_000)
    await fake.clientClosed(n)
  })

  it('headers sent but no first chunk within LLM_TIMEOUT_MS → llm_unavailable, upstream aborted', async () => {
    fake.script(sse(textChunks('too late'), { firstChunkDelayMs: 5_000 }))
    const n = fake.requests.length
    const events = await collect(model({ timeoutMs: 200 }).stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(events).toEqual([{ type: 'error', code: 'llm_unavailable', retryable: true, message: 'model endpoint sent no data within 200 ms' }])
    expect((await fake.clientClosed(n)).aborted).toBe(true)
  })

  it.each([['lean fetch', createLeanFetch()], ['global fetch', undefined]] as const)('a 204 with no body through the %s → llm_unavailable, not a crash', async (_name, fetchImpl) => {
    fake.script(fail(204))
    const events = await collect(model(fetchImpl ? { fetch: fetchImpl } : {}).stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ type: 'error', code: 'llm_unavailable', retryable: true })
    // undici gives a 204 a null body; node:http an empty one that ends without an answer.
    expect((events[0] as { message: string }).message).toBe(fetchImpl ? 'model stream ended without a finish reason' : 'model endpoint answered without a body')
  })

  it('LLM_TIMEOUT_MS bounds each gap, not the whole stream: a steady stream longer than it completes', async () => {
    const chunks = textChunks('one two three four five six seven eight')
    fake.script(sse(chunks, { delayMs: 70 }))
    const started = performance.now()
    const got: string[] = []
    const events = await collect(model({ timeoutMs: 200 }).stream({
      messages: user('x'), tools: [], signal: new AbortController().signal, onText: (t) => { got.push(t) }
    }))
    expect(performance.now() - started).toBeGreaterThan(400)
    expect(got.join('')).toBe('one two three four five six seven eight')
    expect(events).toEqual([{ type: 'finish', reason: 'stop' }])
  })

  it('an idle gap mid-stream beyond LLM_TIMEOUT_MS → llm_error with the partial text', async () => {
    fake.script(sse(textChunks('first second third'), { hangAfter: 3 }))
    const n = fake.requests.length
    const events = await collect(model({ timeoutMs: 200 }).stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(texts(events).join('')).toBe('first second ')
    expect(events.at(-1)).toEqual({ type: 'error', code: 'llm_error', retryable: true, message: 'model stream stalled: no chunk for 200 ms' })
    await fake.clientClosed(n)
  })
})

describe('openai model: after [DONE]', () => {
  const fetches = [['lean fetch', createLeanFetch()], ['global fetch', undefined]] as const

  it.each(fetches)('a body held open after [DONE] past LLM_TIMEOUT_MS: the answer is complete, not a stall (%s)', async (_name, fetchImpl) => {
    fake.script(sse(textChunks('all of it arrived'), { afterDone: 'hang' }))
    const n = fake.requests.length
    const started = performance.now()
    const events = await collect(model({ timeoutMs: 300, ...(fetchImpl ? { fetch: fetchImpl } : {}) }).stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(texts(events).join('')).toBe('all of it arrived')
    expect(events.at(-1)).toEqual({ type: 'finish', reason: 'stop' })
    expect(events.filter((e) => e.type === 'error')).toHaveLength(0)
    // Finished after the grace (min(1 s, LLM_TIMEOUT_MS)), and the held connection was closed by us.
    expect(performance.now() - started).toBeGreaterThanOrEqual(290)
    expect((await fake.clientClosed(n)).aborted).toBe(true)
  })

  it.each(fetches)('a connection reset after [DONE] still finishes the turn (%s)', async (_name, fetchImpl) => {
    fake.script(sse(textChunks('complete answer'), { afterDone: 'cut' }))
    const events = await collect(model(fetchImpl ? { fetch: fetchImpl } : {}).stream({ messages: user('x'), tools: [], signal: new AbortController().signal }))
    expect(texts(events).join('')).toBe('complete answer')
    expect(events).toHaveLength(texts(events).length + 1)
    expect(events.at(-1)).toEqual({ type: 'finish', reason: 'stop' })
  })

  it('a body that ends shortly after [DONE] keeps the keep-alive connection for the next turn', async () => {
    fake.script(...[0, 1, 2].map(() => sse(textChunks('hi there'), { afterDone: 30 })))
    const before = fake.connections
    const m = model({ fetch: createLeanFetch() })
    for (let i = 0; i < 3; i++) {
      const events = await collect(m.stream({ messages: user(`n${i}`), tools: [], signal: new AbortController().signal }))
      expect(texts(events).join('')).toBe('hi there')
      expect(events.at(-1)).toEqual({ type: 'finish', reason: 'stop' })
    }
    expect(fake.connections - before).toBe(1)
  })
})

describe('openai model: text sink (the hot path)', () => {
  const fetches = [['lean fetch', createLeanFetch()], ['global fetch', undefined]] as const

  it.each(fetches)('through the %s: text goes to onText in order and never as events; calls and finish still arrive as events', async (_name, fetchImpl) => {
    const args = JSON.stringify({ userId: 'alice' })
    fake.script(sse([...textChunks('Let me look ü 世界 up.'), ...toolCallChunks([{ id: 'call_a', name: 'fetch_user_profile', args }], { splitArgsInto: 3 })], { splitAt: 5 }))
    const got: string[] = []
    const events = await collect(model(fetchImpl ? { fetch: fetchImpl } : {}).stream({
      messages: user('x'), tools: [], signal: new AbortController().signal, onText: (t) => { got.push(t) }
    }))
    expect(got.join('')).toBe('Let me look ü 世界 up.')
    expect(got.length).toBeGreaterThan(1)
    expect(events).toEqual([
      { type: 'tool_call', call: { id: 'call_a', name: 'fetch_user_profile', arguments: args } },
      { type: 'finish', reason: 'tool_calls' }
    ])
  })

  it('a throwing sink ends the stream by rethrowing its error, and the upstream request is closed', async () => {
    fake.script(sse(textChunks('one two three four'), { hangAfter: 3 }))
    const n = fake.requests.length
    const boom = new Error('sink broke')
    let calls = 0
    const run = collect(model({ fetch: createLeanFetch() }).stream({
      messages: user('x'), tools: [], signal: new AbortController().signal, onText: () => { if (++calls === 2) throw boom }
    }))
    await expect(run).rejects.toBe(boom)
    expect(calls).toBe(2)
    expect((await fake.clientClosed(n)).aborted).toBe(true)
  })

  it('after an abort the sink gets nothing more and the stream ends quietly', async () => {
    fake.script(sse(textChunks('a b c d e f g h'), { hangAfter: 4 }))
    const n = fake.requests.length
    const ac = new AbortController()
    const got: string[] = []
    const events = await collect(model({ fetch: createLeanFetch() }).stream({
      messages: user('x'), tools: [], signal: ac.signal, onText: (t) => { got.push(t); if (got.join('').endsWith('b ')) ac.abort() }
    }))
    expect(got.join('')).toBe('a b ')
    expect(events).toEqual([])
    expect((await fake.clientClosed(n)).aborted).toBe(true)
  })

  it('a malformed chunk after good ones: the good text reached the sink, then llm_error', async () => {
    const chunks = textChunks('good words')
    fake.script(sse([...chunks, ...textChunks('lost')], { malformedAt: chunks.length }))
    const got: string[] = []
    const events = await collect(model({ fetch: createLeanFetch() }).stream({
      messages: user('x'), tools: [], signal: new AbortController().signal, onText: (t) => { got.push(t) }
    }))
    expect(got.join('')).toBe('good words')
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ type: 'error', code: 'llm_error', retryable: true })
    expect((events[0] as { message: string }).message).toMatch(/^malformed chunk from the model endpoint/)
  })
})

describe('openai model: abort', () => {
  it('abort mid-stream closes the upstream connection and ends quietly', async () => {
    fake.script(sse(textChunks('a b c d e f g h i j'), { hangAfter: 4 }))
    const n = fake.requests.length
    const ac = new AbortController()
    const events = await collect(model().stream({ messages: user('x'), tools: [], signal: ac.signal }), (e) => {
      if (e.type === 'text' && e.text.endsWith('c ')) ac.abort()
    })
    expect(texts(events).join('')).toBe('a b c ')
    expect(events.some((e) => e.type === 'error' || e.type === 'finish')).toBe(false)
    expect((await fake.clientClosed(n)).aborted).toBe(true)
  })

  it('abort while waiting for headers ends quietly and closes the connection', async () => {
    fake.script(sse(textChunks('never'), { headersDelayMs: 10_000 }))
    const n = fake.requests.length
    const ac = new AbortController()
    const pending = collect(model().stream({ messages: user('x'), tools: [], signal: ac.signal }))
    await fake.request(n)
    ac.abort()
    expect(await pending).toEqual([])
    expect((await fake.clientClosed(n)).aborted).toBe(true)
  })

  it('an already-aborted signal sends nothing', async () => {
    const n = fake.requests.length
    const ac = new AbortController()
    ac.abort()
    expect(await collect(model().stream({ messages: user('x'), tools: [], signal: ac.signal }))).toEqual([])
    expect(fake.requests.length).toBe(n)
  })
})

describe('openai model: complete()', () => {
  it('refuses a non-streaming answer over 16 MiB (lean fetch) with llm_unavailable instead of buffering it', async () => {
    fake.script(json(completion('y'.repeat(17 * 1024 * 1024))))
    const err = await model({ fetch: createLeanFetch() }).complete({ messages: user('x') }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ModelError)
    expect(err).toMatchObject({ code: 'llm_unavailable', message: expect.stringMatching(/response body over 16777216 bytes/) })
  })

  it('is a non-streaming request and returns the trimmed text', async () => {
    fake.script(json(completion('  A short summary.  ')))
    const n = fake.requests.length
    await expect(model().complete({ messages: user('summarise') })).resolves.toBe('A short summary.')
    expect(fake.requests[n].body.stream).toBeUndefined()
    expect(fake.requests[n].body.messages).toEqual([{ role: 'user', content: 'summarise' }])
  })

  it('throws ModelError with the mapped code', async () => {
    fake.script(fail(403), json(completion('')))
    const err = await model().complete({ messages: user('x') }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ModelError)
    expect(err).toMatchObject({ code: 'llm_unavailable', retryable: false })
    await expect(model().complete({ messages: user('x') })).rejects.toMatchObject({ code: 'llm_error', message: 'model returned an empty completion' })
  })
})

describe('providerLabel', () => {
  it('labels endpoints by host', () => {
    expect(providerLabel(undefined)).toBe('openai')
    expect(providerLabel('https://api.openai.com/v1')).toBe('openai')
    expect(providerLabel('https://x.openai.azure.com/openai')).toBe('azure-openai')
    expect(providerLabel('http://127.0.0.1:11434/v1')).toBe('openai-compatible')
    expect(model().info).toEqual({ provider: 'openai-compatible', name: 'fake-model', offline: false })
  })
})
