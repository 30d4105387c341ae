/** MCP answers mapped for the model: results and errors, cut or refused when too large; input schemas; error texts. */
import { describe, expect, it } from 'vitest'
import { chooseTools, MAX_MCP_RESULT_CHARS, MAX_MCP_TOOLS_PER_SERVER, resultOf, safeError, validSchema } from '../../src/tools/mcp/result.js'

const text = (t: unknown) => ({ type: 'text', text: t })
const CUT = `… [cut: ${MAX_MCP_RESULT_CHARS + 1} characters, at most ${MAX_MCP_RESULT_CHARS}]`

describe('resultOf', () => {
  it('text-only content is its text, parts joined by newlines; a part without text counts as empty', () => {
    expect(resultOf({ content: [text('one'), text('two')] })).toEqual({ ok: true, result: 'one\ntwo' })
    expect(resultOf({ content: [text('a'), { type: 'text' }, text('b')] })).toEqual({ ok: true, result: 'a\n\nb' })
    expect(resultOf({ content: [text(42)] })).toEqual({ ok: true, result: '42' })
    expect(resultOf({ content: [] })).toEqual({ ok: true, result: '' })
  })

  it('no content list reads as no content', () => {
    expect(resultOf({})).toEqual({ ok: true, result: '' })
    expect(resultOf({ content: 'not a list' })).toEqual({ ok: true, result: '' })
  })

  it('other content is passed as the list; structured content wins over both, even when falsy', () => {
    const mixed = [text('caption'), { type: 'image', data: 'AAAA', mimeType: 'image/png' }]
    expect(resultOf({ content: mixed })).toEqual({ ok: true, result: mixed })
    expect(resultOf({ content: [text('x')], structuredContent: { temp: 21 } })).toEqual({ ok: true, result: { temp: 21 } })
    expect(resultOf({ content: [text('x')], structuredContent: null })).toEqual({ ok: true, result: null })
    expect(resultOf({ content: [text('x')], structuredContent: 0 })).toEqual({ ok: true, result: 0 })
  })

  it('isError: the text, a stock sentence when it is empty, the content as JSON when not text; only true counts', () => {
    expect(resultOf({ isError: true, content: [text('bad input'), text('try again')] })).toEqual({ ok: false, error: 'bad input\ntry again' })
    expect(resultOf({ isError: true, content: [] })).toEqual({ ok: false, error: 'the tool reported an error' })
    expect(resultOf({ isError: true, content: [text('')] })).toEqual({ ok: false, error: 'the tool reported an error' })
    const image = [{ type: 'image', data: 'AA' }]
    expect(resultOf({ isError: true, content: image })).toEqual({ ok: false, error: JSON.stringify(image) })
    expect(resultOf({ isError: 'true', content: [text('fine')] })).toEqual({ ok: true, result: 'fine' })
  })

  it('text is cut at the limit with one note of its length (a pair is not split); text at the limit is whole', () => {
    // Compared by length and ends: a failed toEqual on 100 000 characters prints them all.
    const shape = (r: { ok: boolean; result?: unknown; error?: string }) => {
      const t = String(r.ok ? r.result : r.error)
      return { ok: r.ok, length: t.length, head: t.slice(0, 3), tail: t.slice(-70) }
    }
    const whole = 'a'.repeat(MAX_MCP_RESULT_CHARS)
    expect(shape(resultOf({ content: [text(whole)] }))).toEqual({ ok: true, length: MAX_MCP_RESULT_CHARS, head: 'aaa', tail: 'a'.repeat(70) })
    const cutAt = { length: MAX_MCP_RESULT_CHARS + CUT.length, head: 'aaa', tail: `${'a'.repeat(70 - CUT.length)}${CUT}` }
    expect(shape(resultOf({ content: [text(`${whole}b`)] }))).toEqual({ ok: true, ...cutAt })
    expect(shape(resultOf({ isError: true, content: [text(`${whole}b`)] }))).toEqual({ ok: false, ...cutAt })
    const emoji = `${'a'.repeat(MAX_MCP_RESULT_CHARS - 1)}\u{1F600}`
    const withPair = shape(resultOf({ content: [text(emoji)] }))
    expect(withPair).toMatchObject({ length: MAX_MCP_RESULT_CHARS - 1 + CUT.length, tail: `${'a'.repeat(70 - CUT.length)}${CUT}` })
  })

  it('a non-text result over the limit as JSON fails, naming its size; at the limit it passes', () => {
    const at = 'x'.repeat(MAX_MCP_RESULT_CHARS - 2) // JSON adds the two quotes
    expect(resultOf({ structuredContent: at })).toEqual({ ok: true, result: at })
    const list = { items: 'y'.repeat(MAX_MCP_RESULT_CHARS - 12) } // {"items":"…"} adds 12
    expect(JSON.stringify(list)).toHaveLength(MAX_MCP_RESULT_CHARS)
    expect(resultOf({ structuredContent: list })).toEqual({ ok: true, result: list })
    const over = { items: `${list.items}z` }
    expect(resultOf({ structuredContent: over })).toEqual({
      ok: false, error: `the result is too large (${MAX_MCP_RESULT_CHARS + 1} characters of JSON; at most ${MAX_MCP_RESULT_CHARS})`
    })
    const blob = [{ type: 'resource', blob: 'b'.repeat(MAX_MCP_RESULT_CHARS) }]
    expect(resultOf({ content: blob })).toMatchObject({ ok: false, error: expect.stringMatching(/^the result is too large \(\d+ characters of JSON/) })
  })
})

describe('validSchema', () => {
  it('takes an object schema, with or without properties, required and additionalProperties of the right kinds', () => {
    for (const ok of [
      { type: 'object' },
      { type: 'object', properties: {} },
      { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
      { type: 'object', additionalProperties: false },
      { type: 'object', additionalProperties: true },
      { type: 'object', additionalProperties: { type: 'number' } }
    ]) expect(validSchema(ok)).toBe(true)
  })

  it('refuses anything else', () => {
    for (const bad of [
      null, undefined, 'object', 42, [], [{ type: 'object' }],
      {}, { type: 'string' }, { type: ['object'] },
      { type: 'object', properties: null },
      { type: 'object', properties: [] },
      { type: 'object', properties: 'x' },
      { type: 'object', required: 'a' },
      { type: 'object', required: null },
      { type: 'object', additionalProperties: 'yes' },
      { type: 'object', additionalProperties: null },
      { type: 'object', additionalProperties: [] }
    ]) expect(validSchema(bad)).toBe(false)
  })
})

describe('chooseTools', () => {
  const obj = { type: 'object' }
  const nameOf = (t: string) => `srv__${t.replace(/[^A-Za-z0-9_-]/g, '_')}`
  const names = (r: { chosen: Array<{ name: string }> }) => r.chosen.map((t) => t.name)

  it('offers tools in name order whatever the listed order, keeping each one as listed', () => {
    const b = { name: 'b', inputSchema: obj, extra: 1 }
    const r = chooseTools([b, { name: 'a', inputSchema: obj }, { name: 'c', inputSchema: obj }], { nameOf })
    expect(names(r)).toEqual(['a', 'b', 'c'])
    expect(r.chosen[1]).toBe(b)
    expect(r.skipped).toEqual([])
  })

  it('of two tools listed under one name, the first listed is offered', () => {
    const first = { name: 'dup', inputSchema: obj, n: 1 }
    const r = chooseTools([first, { name: 'dup', inputSchema: obj, n: 2 }], { nameOf })
    expect(r.chosen).toEqual([first])
    expect(r.skipped).toEqual(['dup'])
  })

  it('sorts a long list listed in any order (runs merged, not only inserted)', () => {
    const all = Array.from({ length: 200 }, (_, i) => `t${String(i).padStart(3, '0')}`)
    // A fixed shuffle: reversed halves interleaved, so the sort has runs to merge.
    const listed = all.slice(0, 100).reverse().flatMap((name, i) => [name, all[199 - i]]).map((name) => ({ name, inputSchema: obj }))
    expect(names(chooseTools(listed, { nameOf }))).toEqual(all.slice(0, MAX_MCP_TOOLS_PER_SERVER))
  })

  it('only the allow-listed ones, when a list is given; the others are not skipped, just not wanted', () => {
    const r = chooseTools(['a', 'b', 'c'].map((name) => ({ name, inputSchema: obj })), { nameOf, allowed: ['c', 'a', 'zz'] })
    expect(names(r)).toEqual(['a', 'c'])
    expect(r.skipped).toEqual([])
    expect(names(chooseTools([{ name: 'a', inputSchema: obj }], { nameOf, allowed: [] }))).toEqual([])
  })

  it('skips a schema the model API refuses, and the later of two names that map to one', () => {
    const r = chooseTools([
      { name: 'del_ete', inputSchema: obj }, { name: 'bad', inputSchema: { type: 'string' } }, { name: 'del.ete', inputSchema: obj }
    ], { nameOf })
    expect(names(r)).toEqual(['del.ete'])
    expect(r.skipped).toEqual(['bad', 'del_ete'])
  })

  it('offers at most MAX_MCP_TOOLS_PER_SERVER, skipping the rest by name, and cuts skipped names to 64', () => {
    const listed = Array.from({ length: MAX_MCP_TOOLS_PER_SERVER + 2 }, (_, i) => ({ name: `t${String(i).padStart(3, '0')}`, inputSchema: obj }))
    const r = chooseTools([...listed, { name: 'z'.repeat(80), inputSchema: obj }], { nameOf })
    expect(r.chosen).toHaveLength(MAX_MCP_TOOLS_PER_SERVER)
    expect(r.chosen.at(-1)?.name).toBe(`t${String(MAX_MCP_TOOLS_PER_SERVER - 1).padStart(3, '0')}`)
    expect(r.skipped).toEqual(['t064', 't065', 'z'.repeat(64)])
    expect(chooseTools(listed.slice(0, MAX_MCP_TOOLS_PER_SERVER), { nameOf }).skipped).toEqual([])
  })
})

describe('safeError', () => {
  it('hides the user and password of every URL in an error, any scheme, and keeps the rest', () => {
    expect(safeError(new Error('connect to https://bob:s3cret@mcp.example:8443/x failed; also HTTP://tok@h/'))).toBe(
      'connect to https://[redacted]@mcp.example:8443/x failed; also HTTP://[redacted]@h/')
    expect(safeError(new Error('git+ssh://me@host and https://plain.example/@notcreds'))).toBe('git+ssh://[redacted]@host and https://plain.example/@notcreds')
    expect(safeError(new Error('https://u:p@h/ at the start'))).toBe('https://[redacted]@h/ at the start')
    expect(safeError('s3://AKIA:key@bucket and x://tok@host')).toBe('s3://[redacted]@bucket and x://[redacted]@host')
    expect(safeError('a string thrown')).toBe('a string thrown')
    expect(safeError(42)).toBe('42')
  })

  it('is at most 500 characters', () => {
    expect(safeError(new Error('e'.repeat(900)))).toBe('e'.repeat(500))
    expect(safeError(new Error('e'.repeat(500)))).toHaveLength(500)
  })
})
