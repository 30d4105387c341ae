/** Session summaries: the transcript, the non-streaming request through the real SDK, empty and failing answers. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { createOfflineModel } from '../../src/llm/offline-model.js'
import { createOpenAIModel } from '../../src/llm/openai-model.js'
import { summarizeSession } from '../../src/llm/summarize.js'
import { buildTranscript, Transcript } from '../../src/llm/transcript.js'
import type { StoredEvent } from '../../src/protocol.js'
import { completion, fail, json, startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js'

let fake: FakeOpenAI
beforeAll(async () => { fake = await startFakeOpenAI() })
afterAll(async () => { await fake.close() })

let seq = 0
const ts = '2026-01-01T00:00:00.000Z'
const ev = (e: Record<string, unknown>) => ({ ...e, seq: ++seq, ts }) as unknown as StoredEvent
const events: StoredEvent[] = [
  ev({ type: 'connected', connectionId: 'c' }),
  ev({ type: 'user_message', turnId: 't1', content: 'What is the CPU load on the server?' }),
  ev({ type: 'tool_call', turnId: 't1', callId: 'a', name: 'get_system_metrics', arguments: {} }),
  ev({ type: 'tool_result', turnId: 't1', callId: 'a', name: 'get_system_metrics', ok: true, result: { cpu: { loadPercent: 12.5 } }, durationMs: 3 }),
  ev({ type: 'assistant_message', turnId: 't1', content: 'CPU load is 12.5 %.', finishReason: 'stop' }),
  ev({ type: 'user_message', turnId: 't2', content: 'And user bob?' }),
  ev({ type: 'tool_result', turnId: 't2', callId: 'b', name: 'fetch_user_profile', ok: false, error: 'No user with id "bob"', durationMs: 1 }),
  ev({ type: 'assistant_message', turnId: 't2', content: 'There is no user bob.', finishReason: 'cancelled' })
]
const model = () => createOpenAIModel({ apiKey: 'k', baseURL: fake.url, model: 'm', timeoutMs: 2_000, maxRetries: 0, logger: pino({ level: 'silent' }) })

describe('summaries', () => {
  it('builds a line-per-message transcript with tool use', () => {
    expect(buildTranscript(events)).toBe([
      'User: What is the CPU load on the server?',
      'Tool get_system_metrics: ok {"cpu":{"loadPercent":12.5}}',
      'Assistant: CPU load is 12.5 %.',
      'User: And user bob?',
      'Tool fetch_user_profile: failed (No user with id "bob")',
      'Assistant: There is no user bob. [cancelled]'
    ].join('\n'))
  })

  it('keeps the start and the end of a long transcript within the limit', () => {
    const many = Array.from({ length: 200 }, (_, i) => ev({ type: 'user_message', turnId: `t${i}`, content: `message number ${i} ${'y'.repeat(80)}` }))
    const text = buildTranscript(many, 2_000)
    expect(text.length).toBeLessThanOrEqual(2_000)
    expect(text).toContain('message number 0 ')
    expect(text).toContain('message number 199 ')
    expect(text).toMatch(/\[… \d+ lines left out …\]/)
  })

  it('past the limit keeps the opening half and the newest lines, counting the middle exactly, in bounded memory', () => {
    const max = 2_000
    const many = Array.from({ length: 100_000 }, (_, i) => ev({ type: 'user_message', turnId: `t${i}`, content: `message number ${i} ${'y'.repeat(i % 97)}` }))
    const t = new Transcript(max)
    let largest = 0
    for (const e of many) {
      t.add(e)
      largest = Math.max(largest, t.toString().length, t.heldChars - 1)
    }
    const text = t.toString()
    // Never more than the limit at any point: the builder holds about maxChars, not the log.
    expect(largest).toBeLessThanOrEqual(max)
    const lines = text.split('\n')
    const marker = lines.findIndex((l) => l.startsWith('[… '))
    const head = lines.slice(0, marker)
    const tail = lines.slice(marker + 1)
    expect(head[0]).toBe('User: message number 0')
    expect(tail.at(-1)).toMatch(/^User: message number 99999 y+$/)
    // Head and tail are contiguous runs of the log, and the marker counts exactly the lines between them.
    const n = (l: string) => Number(/number (\d+)/.exec(l)![1])
    expect(head.map(n)).toEqual(head.map((_, i) => i))
    expect(tail.map(n)).toEqual(tail.map((_, i) => 100_000 - tail.length + i))
    expect(lines[marker]).toBe(`[… ${100_000 - head.length - tail.length} lines left out …]`)
    // Each half uses its room: neither side is starved.
    expect(head.join('\n').length).toBeGreaterThan(max / 2 - 150)
    expect(tail.join('\n').length).toBeGreaterThan(max / 2 - 150)
  })

  it('keeps every line while they fit, and knows whether the user said anything', () => {
    expect(Transcript.of(events, 10_000).toString().split('\n')).toHaveLength(6)
    expect(Transcript.of(events).hasUserMessage).toBe(true)
    expect(Transcript.of([events[0], events[2]]).hasUserMessage).toBe(false)
    const exact = buildTranscript(events)
    expect(buildTranscript(events, exact.length)).toBe(exact)
    expect(buildTranscript(events, exact.length - 1)).toContain('lines left out')
  })

  it('with a small limit a long line is cut to half the room, so the opening and the newest line are still there', () => {
    const long = [
      ev({ type: 'user_message', turnId: 't0', content: `first ${'x'.repeat(990)}` }),
      ...Array.from({ length: 20 }, (_, i) => ev({ type: 'user_message', turnId: `t${i + 1}`, content: `message ${i + 1} ${'y'.repeat(60)}` })),
      ev({ type: 'assistant_message', turnId: 't21', content: `last ${'z'.repeat(990)}`, finishReason: 'stop' })
    ]
    const text = buildTranscript(long, 1_500)
    expect(text.length).toBeLessThanOrEqual(1_500)
    const lines = text.split('\n')
    expect(lines[0]).toMatch(/^User: first x+…$/)
    expect(lines[0].length).toBe(Math.floor((1_500 - 40) / 2) - 1)
    expect(lines.at(-1)).toMatch(/^Assistant: last z+…$/)
    expect(lines[1]).toBe('[… 20 lines left out …]')
    expect(() => new Transcript(100)).toThrow(RangeError)
  })

  it('reads an async stream of events, as the summary worker hands them over', async () => {
    fake.script(json(completion('streamed summary')))
    const n = fake.requests.length
    async function * pages () { for (const e of events) { await new Promise((resolve) => setImmediate(resolve)); yield e } }
    expect(await summarizeSession({ model: model(), events: pages() })).toBe('streamed summary')
    expect(fake.requests[n].body.messages[1].content).toContain(buildTranscript(events))
  })

  it('asks the model without streaming, with the transcript, and returns the trimmed text', async () => {
    fake.script(json(completion('\n  The user checked the CPU load (12.5 %) and asked about bob, who does not exist.  \n')))
    const n = fake.requests.length
    const summary = await summarizeSession({ model: model(), events })
    expect(summary).toBe('The user checked the CPU load (12.5 %) and asked about bob, who does not exist.')
    const body = fake.requests[n].body
    expect(body.stream ?? false).toBe(false)
    expect(body.messages[0].role).toBe('system')
    expect(body.messages[1].content).toContain(buildTranscript(events))
  })

  it('throws on an empty answer and on an upstream failure', async () => {
    fake.script(json(completion('   ')), fail(400))
    await expect(summarizeSession({ model: model(), events })).rejects.toMatchObject({ name: 'ModelError', code: 'llm_error' })
    await expect(summarizeSession({ model: model(), events })).rejects.toMatchObject({ name: 'ModelError', code: 'llm_unavailable', retryable: false })
  })

  it('works with the offline model, and does not call a model for a session without messages', async () => {
    const offline = await summarizeSession({ model: createOfflineModel({ tokenDelayMs: 0 }), events })
    expect(offline).toBe('The user asked about “What is the CPU load on the server?” and 1 more question; the assistant last said “There is no user bob. [cancelled]”; tools used: get_system_metrics, fetch_user_profile; 4 messages.')
    const n = fake.requests.length
    expect(await summarizeSession({ model: model(), events: [events[0]] })).toBe('No messages were exchanged in this session.')
    expect(fake.requests.length).toBe(n)
  })
})
