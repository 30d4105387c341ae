/** The registry: specs from zod, and run() turning every failure into ok:false without throwing. */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createToolRegistry, defineTool } from '../../src/tools/registry.js'

const ctx = (signal = new AbortController().signal) => ({ signal, sessionId: 's1' })

const add = defineTool({
  name: 'add',
  description: 'Adds two numbers',
  parameters: z.object({ a: z.number(), b: z.number().default(0) }),
  handler: async ({ a, b }) => ({ sum: a + b })
})

describe('tool registry', () => {
  it('lists names and specs (JSON Schema without $schema)', () => {
    const reg = createToolRegistry({ tools: [add], timeoutMs: 1_000 })
    expect(reg.names()).toEqual(['add'])
    expect(reg.specs()).toEqual([{
      type: 'function',
      function: {
        name: 'add',
        description: 'Adds two numbers',
        parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number', default: 0 } }, required: ['a'] }
      }
    }])
  })

  it('runs a valid call with parsed, defaulted arguments and reports its duration', async () => {
    const out = await createToolRegistry({ tools: [add], timeoutMs: 1_000 }).run({ name: 'add', arguments: '{"a": 2}' }, ctx())
    expect(out).toEqual({ ok: true, result: { sum: 2 }, durationMs: expect.any(Number) })
    expect(out.durationMs).toBeGreaterThanOrEqual(0)
  })

  it('returns results as JSON carries them, and fails a result JSON cannot carry instead of passing it on', async () => {
    const tool = (name: string, value: () => unknown) => defineTool({ name, description: name, parameters: z.object({}), handler: async () => value() })
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const reg = createToolRegistry({
      tools: [tool('big', () => ({ n: 10n })), tool('cycle', () => cyclic), tool('date', () => ({ at: new Date(0) })), tool('nothing', () => undefined)],
      timeoutMs: 1_000
    })
    expect(await reg.run({ name: 'big', arguments: '{}' }, ctx())).toMatchObject({ ok: false, error: expect.stringMatching(/not JSON-serialisable.*BigInt/) })
    expect(await reg.run({ name: 'cycle', arguments: '{}' }, ctx())).toMatchObject({ ok: false, error: expect.stringMatching(/not JSON-serialisable/) })
    expect(await reg.run({ name: 'date', arguments: '{}' }, ctx())).toMatchObject({ ok: true, result: { at: '1970-01-01T00:00:00.000Z' } })
    expect(await reg.run({ name: 'nothing', arguments: '{}' }, ctx())).toMatchObject({ ok: true, result: null })
  })

  it('unknown tool → ok:false naming the available tools; prototype keys are not tools', async () => {
    const reg = createToolRegistry({ tools: [add, { ...add, name: 'mul' }], timeoutMs: 1_000 })
    expect(await reg.run({ name: 'nope', arguments: '{}' }, ctx())).toMatchObject({ ok: false, error: 'Unknown tool "nope". Available tools: add, mul' })
    for (const name of ['__proto__', 'toString', 'constructor']) {
      expect(await reg.run({ name, arguments: '{}' }, ctx())).toMatchObject({ ok: false, error: expect.stringMatching(/^Unknown tool/) })
    }
  })

  it('bad JSON and schema failures → ok:false with a readable reason; empty arguments mean {}', async () => {
    const reg = createToolRegistry({ tools: [add], timeoutMs: 1_000 })
    expect(await reg.run({ name: 'add', arguments: '{"a": ' }, ctx())).toMatchObject({ ok: false, error: expect.stringMatching(/^Invalid JSON arguments: /) })
    const bad = await reg.run({ name: 'add', arguments: '{"a": "two"}' }, ctx())
    expect(bad).toMatchObject({ ok: false })
    expect((bad as { error: string }).error).toBe('Invalid arguments for add:\n✖ Invalid input: expected number, received string\n  → at a')
    expect(await reg.run({ name: 'add', arguments: '' }, ctx())).toMatchObject({ ok: false, error: expect.stringContaining('→ at a') })
    const noArgs = defineTool({ name: 'ping', description: 'p', parameters: z.object({}), handler: async () => 'pong' })
    expect(await createToolRegistry({ tools: [noArgs], timeoutMs: 1_000 }).run({ name: 'ping', arguments: '  ' }, ctx())).toMatchObject({ ok: true, result: 'pong' })
  })

  it('a throwing handler → ok:false with its message', async () => {
    const boom = defineTool({ name: 'boom', description: 'b', parameters: z.object({}), handler: async () => { throw new Error('kaput') } })
    expect(await createToolRegistry({ tools: [boom], timeoutMs: 1_000 }).run({ name: 'boom', arguments: '{}' }, ctx())).toMatchObject({ ok: false, error: 'kaput' })
  })

  it('timeout (per-tool over default) → ok:false and the handler signal is aborted', async () => {
    let handlerSignal: AbortSignal | undefined
    const slow = defineTool({
      name: 'slow', description: 's', parameters: z.object({}), timeoutMs: 50,
      handler: async (_a, c) => { handlerSignal = c.signal; await new Promise(() => {}) }
    })
    const out = await createToolRegistry({ tools: [slow], timeoutMs: 10_000 }).run({ name: 'slow', arguments: '{}' }, ctx())
    expect(out).toMatchObject({ ok: false, error: 'Tool "slow" timed out after 50 ms' })
    expect(out.durationMs).toBeGreaterThanOrEqual(45)
    // Milliseconds of this call, to two decimals (a loose upper bound: only a wrong formula gets near it).
    expect(out.durationMs).toBeLessThan(10_000)
    expect(out.durationMs * 100).toBeCloseTo(Math.round(out.durationMs * 100), 6)
    expect(handlerSignal?.aborted).toBe(true)
  })

  it('an aborted turn stops waiting for the tool at once', async () => {
    const ac = new AbortController()
    let handlerSignal: AbortSignal | undefined
    const hang = defineTool({ name: 'hang', description: 'h', parameters: z.object({}), handler: async (_a, c) => { handlerSignal = c.signal; ac.abort(); await new Promise(() => {}) } })
    const out = await createToolRegistry({ tools: [hang], timeoutMs: 10_000 }).run({ name: 'hang', arguments: '{}' }, ctx(ac.signal))
    expect(out).toMatchObject({ ok: false, error: 'cancelled' })
    expect(handlerSignal?.aborted).toBe(true)
  })

  it('refuses duplicate names', () => {
    expect(() => createToolRegistry({ tools: [add, add], timeoutMs: 1 })).toThrow('Duplicate tool name "add"')
  })
})
