/** The registry beyond built-in tools: external sources (MCP), approval rules, cancellation and what a call leaves behind. */
import { getEventListeners } from 'node:events'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createToolRegistry, defineTool, parseApprovalList } from '../../src/tools/registry.js'
import type { ExternalTool, ToolSource } from '../../src/tools/types.js'

const ctx = (signal = new AbortController().signal) => ({ signal, sessionId: 's1' })
const echo = defineTool({ name: 'echo', description: 'Echoes', parameters: z.object({ text: z.string() }), handler: async ({ text }) => ({ text }) })

function external (name: string, over: Partial<ExternalTool> = {}): ExternalTool {
  return {
    name,
    description: `${name} from a server`,
    parameters: { type: 'object', properties: { q: { type: 'string' } } },
    timeoutMs: 1_000,
    requireApproval: false,
    call: async (args) => ({ ok: true, result: { got: args } }),
    ...over
  }
}

/** A source whose tools the test changes; `reads` counts how often the registry asked for them. */
function source (tools: ExternalTool[]): ToolSource & { set: (t: ExternalTool[]) => void; reads: number } {
  let version = 0
  let current = tools
  const s = {
    reads: 0,
    get version () { return version },
    tools () { s.reads++; return current },
    set (t: ExternalTool[]) { current = t; version++ }
  }
  return s
}

function logged () {
  const lines: Array<Record<string, unknown>> = []
  return { logger: pino({ level: 'debug' }, { write: (l: string) => { lines.push(JSON.parse(l)) } }), lines }
}

describe('parseApprovalList', () => {
  it('unset or blank is none, * anywhere is all, else the trimmed names', () => {
    expect(parseApprovalList(undefined)).toEqual(new Set())
    expect(parseApprovalList(' , ')).toEqual(new Set())
    expect(parseApprovalList('a, b ,,c')).toEqual(new Set(['a', 'b', 'c']))
    expect(parseApprovalList('a,*')).toBe('*')
    expect(parseApprovalList(' * ')).toBe('*')
  })
})

describe('external tools', () => {
  it('are offered after the built-in ones; a taken name is skipped with a warning, the first source wins', () => {
    const { logger, lines } = logged()
    const a = source([external('lookup'), external('echo')])
    const b = source([external('lookup', { description: 'second' }), external('other')])
    const reg = createToolRegistry({ tools: [echo], sources: [a, b], timeoutMs: 1_000, logger })
    expect(reg.names()).toEqual(['echo', 'lookup', 'other'])
    expect(reg.specs().map((s) => [s.function.name, s.function.description])).toEqual([
      ['echo', 'Echoes'], ['lookup', 'lookup from a server'], ['other', 'other from a server']
    ])
    expect(reg.specs()[1]).toEqual({ type: 'function', function: { name: 'lookup', description: 'lookup from a server', parameters: { type: 'object', properties: { q: { type: 'string' } } } } })
    expect(lines.filter((l) => l.msg === 'a tool name is taken already: this one is not offered').map((l) => l.tool)).toEqual(['echo', 'lookup'])
    expect(lines.every((l) => l.level === 40)).toBe(true)
  })

  it('are read again only when a source version moves', () => {
    const a = source([external('one')])
    const reg = createToolRegistry({ tools: [], sources: [a], timeoutMs: 1_000 })
    expect(reg.names()).toEqual(['one'])
    reg.specs()
    reg.names()
    expect(a.reads).toBe(1)
    a.set([external('one'), external('two')])
    expect(reg.names()).toEqual(['one', 'two'])
    expect(reg.specs().map((s) => s.function.name)).toEqual(['one', 'two'])
    expect(a.reads).toBe(2)
    a.set([])
    expect(reg.names()).toEqual([])
  })

  it('tells versions apart by source: (1, 11) then (11, 1) is a change', () => {
    let versions = [1, 11]
    const at = (i: number, tools: ExternalTool[]): ToolSource => ({ get version () { return versions[i] }, tools: () => tools })
    let second = [external('b1')]
    const reg = createToolRegistry({ tools: [], sources: [at(0, [external('a')]), { get version () { return versions[1] }, tools: () => second }], timeoutMs: 1_000 })
    expect(reg.names()).toEqual(['a', 'b1'])
    versions = [11, 1]
    second = [external('b2')]
    expect(reg.names()).toEqual(['a', 'b2'])
  })

  it('a taken name with no logger is skipped quietly', () => {
    const reg = createToolRegistry({ tools: [echo], sources: [source([external('echo'), external('x')])], timeoutMs: 1_000 })
    expect(reg.names()).toEqual(['echo', 'x'])
  })

  it('names() is a copy: changing it changes nothing', () => {
    const reg = createToolRegistry({ tools: [echo], timeoutMs: 1_000 })
    reg.names().push('ghost')
    expect(reg.names()).toEqual(['echo'])
  })

  it('runs with the parsed object and its own timeout; a reported failure or a throw is ok:false error', async () => {
    let seen: unknown
    const a = source([
      external('find', { call: async (args, { signal }) => { seen = { args, aborted: signal.aborted }; return { ok: true, result: 'found' } } }),
      external('fail', { call: async () => ({ ok: false, error: 'no such row' }) }),
      external('throws', { call: async () => { throw new Error('socket hang up') } }),
      external('hangs', { timeoutMs: 30, call: async () => await new Promise(() => {}) })
    ])
    const reg = createToolRegistry({ tools: [], sources: [a], timeoutMs: 60_000 })
    expect(await reg.run({ name: 'find', arguments: '{"q":"x"}' }, ctx())).toMatchObject({ ok: true, result: 'found' })
    expect(seen).toEqual({ args: { q: 'x' }, aborted: false })
    expect(await reg.run({ name: 'fail', arguments: '{}' }, ctx())).toMatchObject({ ok: false, error: 'no such row', failure: 'error' })
    expect(await reg.run({ name: 'throws', arguments: '' }, ctx())).toMatchObject({ ok: false, error: 'socket hang up', failure: 'error' })
    expect(await reg.run({ name: 'hangs', arguments: '{}' }, ctx())).toMatchObject({ ok: false, error: 'Tool "hangs" timed out after 30 ms', failure: 'timeout' })
  })

  it('arguments that are not a JSON object are refused before the call', async () => {
    let calls = 0
    const reg = createToolRegistry({ tools: [], sources: [source([external('find', { call: async () => { calls++; return { ok: true, result: 1 } } })])], timeoutMs: 1_000 })
    for (const args of ['null', '[1]', '"text"', '3']) {
      expect(await reg.run({ name: 'find', arguments: args }, ctx())).toMatchObject({
        ok: false, error: 'Invalid arguments for find: expected a JSON object', failure: 'invalid'
      })
    }
    expect(calls).toBe(0)
  })
})

describe('needsApproval', () => {
  const a = source([external('asks', { requireApproval: true }), external('trusted')])

  it('unknown tools never ask; built-in ones ask when listed; external ones when listed or when their server says so', () => {
    const reg = createToolRegistry({ tools: [echo], sources: [a], timeoutMs: 1_000, requireApproval: new Set(['echo', 'trusted']) })
    expect(reg.needsApproval('ghost')).toBe(false)
    expect(reg.needsApproval('echo')).toBe(true)
    expect(reg.needsApproval('trusted')).toBe(true)
    expect(reg.needsApproval('asks')).toBe(true)
    const none = createToolRegistry({ tools: [echo], sources: [a], timeoutMs: 1_000 })
    expect([none.needsApproval('echo'), none.needsApproval('trusted'), none.needsApproval('asks'), none.needsApproval('ghost')]).toEqual([false, false, true, false])
  })

  it('* asks for every known tool, still not for an unknown one', () => {
    const reg = createToolRegistry({ tools: [echo], sources: [a], timeoutMs: 1_000, requireApproval: '*' })
    expect([reg.needsApproval('echo'), reg.needsApproval('trusted'), reg.needsApproval('asks'), reg.needsApproval('ghost')]).toEqual([true, true, true, false])
  })
})

describe('run', () => {
  it('a timed-out handler\'s signal says why; a cancelled call is failure cancelled', async () => {
    let reason: unknown
    const slow = defineTool({ name: 'slow', description: 's', parameters: z.object({}), timeoutMs: 20, handler: async (_a, c) => { await new Promise((resolve) => c.signal.addEventListener('abort', resolve)); reason = c.signal.reason; return 1 } })
    const reg = createToolRegistry({ tools: [slow], timeoutMs: 60_000 })
    expect(await reg.run({ name: 'slow', arguments: '{}' }, ctx())).toMatchObject({ ok: false, failure: 'timeout' })
    expect((reason as Error).message).toBe('timed out after 20 ms')
    const ac = new AbortController()
    const cancelled = reg.run({ name: 'slow', arguments: '{}' }, ctx(ac.signal))
    ac.abort()
    expect(await cancelled).toMatchObject({ ok: false, error: 'cancelled', failure: 'cancelled' })
  })

  it('a call whose turn was cancelled before it started is not started', async () => {
    let started = 0
    const count = defineTool({ name: 'count', description: 'c', parameters: z.object({}), handler: async () => { started++; return started } })
    const ac = new AbortController()
    ac.abort()
    const out = await createToolRegistry({ tools: [count], timeoutMs: 1_000 }).run({ name: 'count', arguments: '{}' }, ctx(ac.signal))
    expect(out).toMatchObject({ ok: false, error: 'cancelled before it started', failure: 'cancelled' })
    expect(started).toBe(0)
  })

  it('leaves no timer and no abort listener behind, whichever way the call ends', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const boom = defineTool({ name: 'boom', description: 'b', parameters: z.object({}), handler: async () => { throw new Error('kaput') } })
    const reg = createToolRegistry({ tools: [echo, boom], timeoutMs: 600_000 })
    const ac = new AbortController()
    const before = timers()
    expect(await reg.run({ name: 'echo', arguments: '{"text":"hi"}' }, ctx(ac.signal))).toMatchObject({ ok: true, result: { text: 'hi' } })
    expect(await reg.run({ name: 'boom', arguments: '{}' }, ctx(ac.signal))).toMatchObject({ ok: false, error: 'kaput' })
    expect(timers()).toBe(before)
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0)
  })

  it('an unknown tool with none offered says so; failures are logged at debug on the turn logger', async () => {
    const { logger, lines } = logged()
    const reg = createToolRegistry({ tools: [], timeoutMs: 1_000 })
    expect(await reg.run({ name: 'nope', arguments: '{}' }, { ...ctx(), logger })).toMatchObject({
      ok: false, error: 'Unknown tool "nope". Available tools: (none)', failure: 'invalid'
    })
    expect(lines).toMatchObject([{ level: 20, msg: 'tool call failed', sessionId: 's1', tool: 'nope', ok: false, error: 'Unknown tool "nope". Available tools: (none)' }])
  })

  it('passes the session and principal to the handler, and logs the call and its end', async () => {
    const { logger, lines } = logged()
    let seen: unknown
    const who = defineTool({ name: 'who', description: 'w', parameters: z.object({}), handler: async (_a, c) => { seen = [c.sessionId, c.principal]; return null } })
    const reg = createToolRegistry({ tools: [who], timeoutMs: 1_000, logger })
    expect(await reg.run({ name: 'who', arguments: '  ' }, ctx())).toMatchObject({ ok: true, result: null })
    expect(seen).toEqual(['s1', null])
    await reg.run({ name: 'who', arguments: '{}' }, { ...ctx(), principal: 'alice' })
    expect(seen).toEqual(['s1', 'alice'])
    expect(lines.map((l) => [l.msg, l.tool, l.sessionId])).toEqual([
      ['tool call', 'who', 's1'], ['tool call done', 'who', 's1'], ['tool call', 'who', 's1'], ['tool call done', 'who', 's1']
    ])
    expect(lines[1]).toMatchObject({ ok: true, durationMs: expect.any(Number) })
  })

  it('an error without a message is reported as unknown error; a thrown non-Error by its text', async () => {
    const blank = defineTool({ name: 'blank', description: 'b', parameters: z.object({}), handler: async () => { throw new Error('') } })
    const text = defineTool({ name: 'text', description: 't', parameters: z.object({}), handler: async () => { throw 'plain words' as unknown as Error } })
    const reg = createToolRegistry({ tools: [blank, text], timeoutMs: 1_000 })
    expect(await reg.run({ name: 'blank', arguments: '{}' }, ctx())).toMatchObject({ ok: false, error: 'unknown error' })
    expect(await reg.run({ name: 'text', arguments: '{}' }, ctx())).toMatchObject({ ok: false, error: 'plain words' })
  })
})
