/** The offline model: deterministic word-by-word answers, real tool calls, prose from real results, fault knob. */
import { describe, expect, it } from 'vitest'
import { extractUserId } from '../../src/llm/offline-answers.js'
import { createOfflineModel, parseFault } from '../../src/llm/offline-model.js'
import { runToolLoop } from '../../src/llm/tool-loop.js'
import type { ChatMessage, ModelEvent, ToolSpec } from '../../src/llm/types.js'
import { createDefaultTools } from '../../src/tools/index.js'
import { createToolRegistry } from '../../src/tools/registry.js'
import type { ToolOutcome } from '../../src/tools/types.js'
import type { UserProfile } from '../../src/store/types.js'

const alice: UserProfile = { userId: 'alice', name: 'Alice Liddell', email: 'alice@example.com', plan: 'pro', createdAt: '2024-03-01T10:00:00.000Z', preferences: { theme: 'dark' } }
const registry = () => createToolRegistry({
  tools: createDefaultTools({ liveSessions: () => 3, getProfile: async (id) => (id === 'alice' ? alice : null) }),
  timeoutMs: 5_000
})
const user = (content: string): ChatMessage[] => [{ role: 'system', content: 'sys' }, { role: 'user', content }]

async function collect (events: AsyncIterable<ModelEvent>): Promise<ModelEvent[]> {
  const out: ModelEvent[] = []
  for await (const e of events) out.push(e)
  return out
}

async function turnWithTools (question: string) {
  const deltas: string[] = []
  const calls: Array<{ name: string; args: unknown }> = []
  const outcomes: ToolOutcome[] = []
  const result = await runToolLoop({
    model: createOfflineModel({ tokenDelayMs: 0 }), tools: registry(), messages: user(question), signal: new AbortController().signal,
    maxSteps: 5, sessionId: 's', callbacks: {
      onText: (t) => deltas.push(t),
      onToolCall: (c, args) => calls.push({ name: c.name, args }),
      onToolResult: (_c, o) => outcomes.push(o)
    }
  })
  return { result, deltas, calls, outcomes }
}

describe('offline model', () => {
  it('is labelled offline', () => {
    expect(createOfflineModel({ tokenDelayMs: 0 }).info).toEqual({ provider: 'offline', name: 'offline-demo', offline: true })
  })

  it('"what is the CPU load?" → calls get_system_metrics, then answers with the real figures', async () => {
    const { result, deltas, calls, outcomes } = await turnWithTools('what is the CPU load?')
    expect(calls).toEqual([{ name: 'get_system_metrics', args: {} }])
    expect(outcomes[0].ok).toBe(true)
    const metrics = (outcomes[0] as { result: any }).result
    expect(result.finishReason).toBe('stop')
    expect(result.steps).toBe(2)
    expect(deltas.length).toBeGreaterThanOrEqual(8)
    expect(deltas.join('')).toBe(result.content)
    expect(result.content).toContain(`CPU load is ${metrics.cpu.loadPercent.toFixed(1)} % across ${metrics.cpu.cores} core`)
    expect(result.content).toContain(`of ${(metrics.memory.totalBytes / 1024 ** 3).toFixed(0)} GiB used`)
    expect(result.content).toContain('3 live sessions')
    expect(result.usage?.completionTokens).toBeGreaterThan(0)
  })

  it('asks fetch_user_profile for the named user and describes the profile', async () => {
    const { result, calls } = await turnWithTools('show the profile of user alice')
    expect(calls).toEqual([{ name: 'fetch_user_profile', args: { userId: 'alice' } }])
    expect(result.content).toContain('User alice is Alice Liddell (alice@example.com), on the pro plan, member since 2024-03-01')
  })

  it('says plainly when the tool failed and why', async () => {
    const { result, calls, outcomes } = await turnWithTools('who is user-42?')
    expect(calls).toEqual([{ name: 'fetch_user_profile', args: { userId: 'user-42' } }])
    expect(outcomes[0]).toMatchObject({ ok: false, error: 'No user with id "user-42"' })
    expect(result.content).toContain('The fetch_user_profile tool failed: No user with id "user-42"')
  })

  it('extracts user ids from common phrasings', () => {
    expect(extractUserId('show the profile of user alice')).toBe('alice')
    expect(extractUserId('who is user-42?')).toBe('user-42')
    expect(extractUserId('what is the user profile for bob.smith.')).toBe('bob.smith')
    expect(extractUserId('user id: carol@example.com')).toBe('carol@example.com')
    expect(extractUserId('show my profile')).toBeUndefined() // the signed-in user's own
    expect(extractUserId('show a user profile')).toBe('demo')
  })

  it('otherwise says it is the offline model and how to configure a real one, word by word', async () => {
    const model = createOfflineModel({ tokenDelayMs: 0 })
    const run = () => collect(model.stream({ messages: user('Tell me a joke'), tools: [], signal: new AbortController().signal }))
    const events = await run()
    const texts = events.flatMap((e) => (e.type === 'text' ? [e.text] : []))
    const content = texts.join('')
    expect(texts.length).toBeGreaterThanOrEqual(8)
    expect(texts.slice(0, -1).every((t) => /^\S+ $/.test(t))).toBe(true)
    expect(content).toMatch(/built-in offline model/)
    expect(content).toContain('“Tell me a joke”')
    expect(content).toMatch(/OPENAI_API_KEY.*OPENAI_BASE_URL.*LLM_MODEL/)
    expect(events.at(-1)).toMatchObject({ type: 'finish', reason: 'stop', usage: { completionTokens: texts.length } })
    expect(await run()).toEqual(events) // deterministic
  })

  it('does not call a tool it was not given', async () => {
    const tools: ToolSpec[] = [{ type: 'function', function: { name: 'fetch_user_profile', description: '', parameters: {} } }]
    const events = await collect(createOfflineModel({ tokenDelayMs: 0 }).stream({ messages: user('CPU load?'), tools, signal: new AbortController().signal }))
    expect(events.some((e) => e.type === 'tool_call')).toBe(false)
    expect(events.at(-1)).toMatchObject({ type: 'finish', reason: 'stop' })
  })

  it('streams with the token delay and stops promptly and quietly on abort', async () => {
    const model = createOfflineModel({ tokenDelayMs: 20 })
    const ac = new AbortController()
    const seen: ModelEvent[] = []
    const started = Date.now()
    for await (const e of model.stream({ messages: user('hello there'), tools: [], signal: ac.signal })) {
      seen.push(e)
      if (seen.length === 3) ac.abort()
    }
    expect(seen).toHaveLength(3)
    // Its reasoning streams first, word by word, with the same delay.
    expect(seen.every((e) => e.type === 'reasoning')).toBe(true)
    expect(Date.now() - started).toBeGreaterThanOrEqual(55)
    expect(Date.now() - started).toBeLessThan(1_000)
  })
})

describe('offline reasoning', () => {
  it('streams a short reasoning before acting on a user message, none after tool results', async () => {
    const model = createOfflineModel({ tokenDelayMs: 0 })
    const first = await collect(model.stream({ messages: user('CPU load?'), tools: registry().specs(), signal: new AbortController().signal }))
    const firstReasoning = first.findIndex((e) => e.type !== 'reasoning')
    expect(firstReasoning).toBeGreaterThan(3)
    const thought = first.slice(0, firstReasoning).map((e) => (e as { text: string }).text).join('')
    expect(thought).toBe('The user asks something the get_system_metrics tool can answer. I will call it rather than guess.')
    expect(first[firstReasoning]).toMatchObject({ type: 'tool_call', call: { name: 'get_system_metrics' } })

    const canned = await collect(model.stream({ messages: user('hello'), tools: [], signal: new AbortController().signal }))
    const types = canned.map((e) => e.type)
    // All reasoning, then all text: never interleaved.
    expect(types.indexOf('text')).toBe(types.lastIndexOf('reasoning') + 1)
    expect(canned.filter((e) => e.type === 'reasoning').map((e) => (e as { text: string }).text).join('')).toBe('No tool fits this message, so I will give the canned offline reply.')
  })
})

describe('offline faults', () => {
  const stream = (fault: string, signal = new AbortController().signal) =>
    collect(createOfflineModel({ tokenDelayMs: 0, fault }).stream({ messages: user('hello'), tools: [], signal }))

  it('fail → llm_unavailable before any token', async () => {
    expect(await stream('fail')).toEqual([{ type: 'error', code: 'llm_unavailable', retryable: true, message: 'offline model refused to start (OFFLINE_FAULT=fail)' }])
  })

  it('cut:3 → three tokens, then llm_error', async () => {
    const events = await stream('cut:3')
    const reasoning = events.filter((e) => e.type === 'reasoning').length
    expect(reasoning).toBeGreaterThan(0)
    expect(events.slice(reasoning).map((e) => e.type)).toEqual(['text', 'text', 'text', 'error'])
    expect(events.at(-1)).toEqual({ type: 'error', code: 'llm_error', retryable: true, message: 'stream cut after 3 tokens (OFFLINE_FAULT)' })
  })

  it('slow:<ms> waits before the first token; abort during the wait ends quietly', async () => {
    const started = Date.now()
    const events = await stream('slow:150')
    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
    expect(events.at(-1)).toMatchObject({ type: 'finish' })
    const ac = new AbortController()
    const pending = stream('slow:10000', ac.signal)
    ac.abort()
    expect(await pending).toEqual([])
  })

  it('rejects an unknown fault', () => {
    expect(() => parseFault('explode')).toThrow(/Invalid offline fault/)
    expect(parseFault('slow:25')).toEqual({ kind: 'slow', ms: 25 })
  })
})

describe('offline complete()', () => {
  it('writes an extractive summary of the transcript it is given', async () => {
    const transcript = 'Summarise this.\n\nUser: what is the CPU load?\nTool get_system_metrics: ok {"cpu":{}}\nAssistant: CPU load is 3.0 %.\nUser: thanks\nAssistant: You are welcome.'
    const summary = await createOfflineModel({ tokenDelayMs: 0 }).complete({ messages: [{ role: 'user', content: transcript }] })
    expect(summary).toBe('The user asked about “what is the CPU load?” and 1 more question; the assistant last said “You are welcome.”; tools used: get_system_metrics; 4 messages.')
  })

  it('fails with OFFLINE_FAULT=fail', async () => {
    await expect(createOfflineModel({ tokenDelayMs: 0, fault: 'fail' }).complete({ messages: user('x') })).rejects.toMatchObject({ code: 'llm_unavailable' })
  })
})
