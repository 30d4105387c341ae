/** The tool loop with the real SDK against the fake server and a real registry: steps, parallel tools, limits, failures, cancel. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { z } from 'zod'
import { createOpenAIModel } from '../../src/llm/openai-model.js'
import { runToolLoop, toolMessageContent, type TurnCallbacks } from '../../src/llm/tool-loop.js'
import type { ChatMessage, ToolCall } from '../../src/llm/types.js'
import { createToolRegistry, defineTool } from '../../src/tools/registry.js'
import type { ToolDefinition, ToolOutcome } from '../../src/tools/types.js'
import {
  emptyChoicesChunk, fail, sse, startFakeOpenAI, textChunks, toolCallChunks, usageChunk, type FakeOpenAI
} from '../support/fake-openai.js'

const logger = pino({ level: 'silent' })
let fake: FakeOpenAI

beforeAll(async () => { fake = await startFakeOpenAI() })
afterAll(async () => { await fake.close() })
beforeEach(() => { expect(fake.pending()).toBe(0) })

const model = (over: { timeoutMs?: number; maxRetries?: number } = {}) =>
  createOpenAIModel({ apiKey: 'k', baseURL: fake.url, model: 'fake-model', timeoutMs: 2_000, maxRetries: 0, logger, ...over })

const weather = defineTool({
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: z.object({ city: z.string().min(1) }),
  handler: async ({ city }) => ({ city, tempC: city === 'Oslo' ? -3 : 21 })
})

function recorder () {
  const log: string[] = []
  const deltas: string[] = []
  const results: Array<{ call: ToolCall; outcome: ToolOutcome }> = []
  const args: unknown[] = []
  const callbacks: TurnCallbacks = {
    onText: (t) => { deltas.push(t); log.push('text') },
    onToolCall: (c, a) => { args.push(a); log.push(`call:${c.name}`) },
    onToolResult: (call, outcome) => { results.push({ call, outcome }); log.push(`result:${call.name}`) }
  }
  return { log, deltas, results, args, callbacks }
}

const history: ChatMessage[] = [{ role: 'system', content: 'sys' }, { role: 'user', content: 'Weather in Oslo?' }]

async function turn (opts: { tools?: ToolDefinition[]; maxSteps?: number; signal?: AbortSignal; toolTimeoutMs?: number; onRec?: (r: ReturnType<typeof recorder>) => void } = {}) {
  const rec = recorder()
  opts.onRec?.(rec)
  const tools = createToolRegistry({ tools: opts.tools ?? [weather], timeoutMs: opts.toolTimeoutMs ?? 2_000 })
  const result = await runToolLoop({
    model: model(), tools, messages: history, signal: opts.signal ?? new AbortController().signal,
    maxSteps: opts.maxSteps ?? 5, sessionId: 's1', callbacks: rec.callbacks
  })
  return { result, ...rec }
}

describe('tool loop', () => {
  it('plain text: streams deltas, content equals their concatenation, one request', async () => {
    // Paced like a real endpoint, so each token arrives in its own network read and becomes its own delta.
    fake.script(sse(textChunks('It is cold in Oslo today.'), { delayMs: 5 }))
    const n = fake.requests.length
    const { result, deltas } = await turn()
    expect(deltas.length).toBeGreaterThanOrEqual(5)
    expect(result).toEqual({ content: 'It is cold in Oslo today.', finishReason: 'stop', steps: 1 })
    expect(deltas.join('')).toBe(result.content)
    expect(fake.requests.length - n).toBe(1)
  })

  it('one tool call with arguments over several chunks: runs it, sends the result back, streams the answer', async () => {
    fake.script(
      sse([emptyChoicesChunk(), ...toolCallChunks([{ id: 'call_1', name: 'get_weather', args: '{"city": "Oslo"}' }], { splitArgsInto: 4, text: 'Checking. ' }), usageChunk({ prompt: 20, completion: 7 })]),
      sse([...textChunks('Oslo is at -3 °C.'), usageChunk({ prompt: 40, completion: 9 })])
    )
    const n = fake.requests.length
    const { result, log, results, args, deltas } = await turn()
    expect(result).toEqual({
      content: 'Checking. Oslo is at -3 °C.', finishReason: 'stop', steps: 2,
      usage: { promptTokens: 60, completionTokens: 16, totalTokens: 76 }
    })
    expect(deltas.join('')).toBe(result.content)
    expect(log.filter((l) => l !== 'text')).toEqual(['call:get_weather', 'result:get_weather'])
    expect(args).toEqual([{ city: 'Oslo' }])
    expect(results[0].outcome).toMatchObject({ ok: true, result: { city: 'Oslo', tempC: -3 } })
    expect(fake.requests.length - n).toBe(2)
    const first = fake.requests[n].body
    expect(first.tools.map((t: any) => t.function.name)).toEqual(['get_weather'])
    const second = fake.requests[n + 1].body.messages
    expect(second.slice(0, 2)).toEqual(history)
    expect(second[2]).toEqual({
      role: 'assistant', content: 'Checking. ',
      tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Oslo"}' } }]
    })
    expect(second[3]).toEqual({ role: 'tool', tool_call_id: 'call_1', content: '{"city":"Oslo","tempC":-3}' })
    expect(second).toHaveLength(4)
  })

  it('runs two tool calls of one step in parallel (each waits for the other to start)', async () => {
    let startA!: () => void; let startB!: () => void
    const aStarted = new Promise<void>((resolve) => { startA = resolve })
    const bStarted = new Promise<void>((resolve) => { startB = resolve })
    const toolA = defineTool({ name: 'a', description: 'a', parameters: z.object({}), handler: async () => { startA(); await bStarted; return 'A' } })
    const toolB = defineTool({ name: 'b', description: 'b', parameters: z.object({}), handler: async () => { startB(); await aStarted; return 'B' } })
    fake.script(
      sse(toolCallChunks([{ id: 'c1', name: 'a', args: '{}' }, { id: 'c2', name: 'b', args: '' }])),
      sse(textChunks('Both done.'))
    )
    const n = fake.requests.length
    const { result, results, log } = await turn({ tools: [toolA, toolB], toolTimeoutMs: 1_500 })
    expect(results.map((r) => r.outcome)).toEqual([
      expect.objectContaining({ ok: true, result: 'A' }),
      expect.objectContaining({ ok: true, result: 'B' })
    ])
    expect(log.slice(0, 2)).toEqual(['call:a', 'call:b'])
    expect(result.finishReason).toBe('stop')
    const tools = fake.requests[n + 1].body.messages.filter((m: any) => m.role === 'tool')
    expect(tools).toEqual([{ role: 'tool', tool_call_id: 'c1', content: '"A"' }, { role: 'tool', tool_call_id: 'c2', content: '"B"' }])
  })

  it('an unknown tool and bad JSON become ok:false results the model reads, and the turn goes on', async () => {
    fake.script(
      sse(toolCallChunks([{ id: 'u1', name: 'launch_rocket', args: '{}' }, { id: 'u2', name: 'get_weather', args: '{"city": ' }])),
      sse(textChunks('Sorry, I cannot do that.'))
    )
    const n = fake.requests.length
    const { result, results, args } = await turn()
    expect(args).toEqual([{}, '{"city": '])
    expect(results.map((r) => r.outcome.ok)).toEqual([false, false])
    const tools = fake.requests[n + 1].body.messages.filter((m: any) => m.role === 'tool')
    expect(tools[0]).toEqual({ role: 'tool', tool_call_id: 'u1', content: 'Error: Unknown tool "launch_rocket". Available tools: get_weather' })
    expect(tools[1].content).toMatch(/^Error: Invalid JSON arguments: /)
    expect(result).toMatchObject({ finishReason: 'stop', content: 'Sorry, I cannot do that.', steps: 2 })
  })

  it('a 2 MB tool result reaches the model cut to 8,000 characters in its own turn too, whole in the result callback', async () => {
    const big = defineTool({ name: 'dump', description: 'A lot of data', parameters: z.object({}), handler: async () => ({ blob: 'z'.repeat(2_000_000) }) })
    fake.script(sse(toolCallChunks([{ id: 'b1', name: 'dump', args: '{}' }])), sse(textChunks('That is a lot.')))
    const n = fake.requests.length
    const { result, results } = await turn({ tools: [big] })
    expect(result.finishReason).toBe('stop')
    expect(JSON.stringify(results[0].outcome)).toContain('z'.repeat(1_999_999))
    const [tool] = fake.requests[n + 1].body.messages.filter((m: any) => m.role === 'tool')
    expect(tool.content).toBe(`{"blob":"${'z'.repeat(8_000 - 9)}… [truncated]`)
  })

  it('never cuts a tool result between the halves of a surrogate pair', () => {
    const text = toolMessageContent({ ok: false, error: `${'a'.repeat(8_000 - 8)}😀tail` })
    expect(text).toBe(`Error: ${'a'.repeat(7_992)}… [truncated]`)
    expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/.test(text)).toBe(false)
    expect(toolMessageContent({ ok: false, error: `${'a'.repeat(7_991)}😀tail` })).toBe(`Error: ${'a'.repeat(7_991)}😀… [truncated]`)
  })

  it('an argument nested past 64 levels is handed to the callback as the raw string (JSON.stringify would overflow on it)', async () => {
    const deep = `{"city":${'['.repeat(65)}${']'.repeat(65)}}`
    const ok = `{"city":${'['.repeat(63)}${']'.repeat(63)}}`
    fake.script(sse(toolCallChunks([{ id: 'd1', name: 'get_weather', args: deep }, { id: 'd2', name: 'get_weather', args: ok }])), sse(textChunks('No.')))
    const { args } = await turn()
    expect(args[0]).toBe(deep)
    expect(typeof args[1]).toBe('object')
  })

  it('stops with tool_limit after maxSteps rounds of tool calls, without asking the model again', async () => {
    const call = (id: string) => sse(toolCallChunks([{ id, name: 'get_weather', args: '{"city":"Rome"}' }]))
    fake.script(call('s1'), call('s2'))
    const n = fake.requests.length
    const { result, results } = await turn({ maxSteps: 2 })
    expect(result).toEqual({ content: '', finishReason: 'tool_limit', steps: 2 })
    expect(results.map((r) => r.call.id)).toEqual(['s1', 's2'])
    expect(fake.requests.length - n).toBe(2)
    expect(fake.requests[n + 1].body.messages.filter((m: any) => m.role === 'tool')).toHaveLength(1)
  })

  it('upstream 500 → error llm_unavailable (retryable)', async () => {
    fake.script(fail(500))
    const { result } = await turn()
    expect(result).toMatchObject({ content: '', finishReason: 'error', steps: 1, error: { code: 'llm_unavailable', retryable: true } })
  })

  it('401 → error llm_unavailable, not retryable', async () => {
    fake.script(fail(401))
    const { result } = await turn()
    expect(result.finishReason).toBe('error')
    expect(result.error).toEqual({ code: 'llm_unavailable', retryable: false, message: 'model endpoint refused the request (401): fake upstream error 401' })
  })

  it('stream cut mid-answer in the second step → llm_error, partial content kept', async () => {
    fake.script(
      sse(toolCallChunks([{ id: 'c', name: 'get_weather', args: '{"city":"Oslo"}' }])),
      sse(textChunks('Oslo is freezing today, bring a coat.'), { cutAfter: 4 })
    )
    const { result, deltas } = await turn()
    expect(result).toMatchObject({ finishReason: 'error', content: 'Oslo is freezing ', steps: 2, error: { code: 'llm_error' } })
    expect(deltas.join('')).toBe(result.content)
  })

  it('abort mid-stream → cancelled with the partial text, upstream connection closed', async () => {
    fake.script(sse(textChunks('one two three four five six seven'), { hangAfter: 4 }))
    const n = fake.requests.length
    const ac = new AbortController()
    const { result } = await turn({
      signal: ac.signal,
      onRec: (rec) => { const onText = rec.callbacks.onText; rec.callbacks.onText = (t) => { onText(t); if (rec.deltas.join('').endsWith('three ')) ac.abort() } }
    })
    expect(result).toEqual({ content: 'one two three ', finishReason: 'cancelled', steps: 1 })
    expect((await fake.clientClosed(n)).aborted).toBe(true)
  })

  it('abort while a tool runs → cancelled at once, no further model request', async () => {
    const ac = new AbortController()
    const stuck = defineTool({
      name: 'stuck', description: 's', parameters: z.object({}),
      handler: async (_args, ctx) => { ac.abort(); await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve)); return 'late' }
    })
    fake.script(sse(toolCallChunks([{ id: 'x', name: 'stuck', args: '{}' }])))
    const n = fake.requests.length
    const { result, results } = await turn({ tools: [stuck], signal: ac.signal })
    expect(result).toEqual({ content: '', finishReason: 'cancelled', steps: 1 })
    expect(results[0].outcome).toMatchObject({ ok: false, error: 'cancelled' })
    expect(fake.requests.length - n).toBe(1)
  })
})
