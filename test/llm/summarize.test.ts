/** Session summaries: the transcript, the non-streaming request through the real SDK, empty and failing answers. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { createOfflineModel } from '../../src/llm/offline-model.js'
import { createOpenAIModel } from '../../src/llm/openai-model.js'
import { buildTranscript, summarizeSession } from '../../src/llm/summarize.js'
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
