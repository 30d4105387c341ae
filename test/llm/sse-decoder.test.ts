/** SseJsonDecoder and sseJsonBatches on bytes made here: field forms, line ends, the size cap, errors and what comes after them. */
import { APIError } from 'openai'
import { describe, expect, it } from 'vitest'
import { MAX_SSE_EVENT_CHARS, SseJsonDecoder, sseJsonBatches } from '../../src/llm/sse-decoder.js'

const enc = (s: string) => Buffer.from(s, 'utf8')

/** Every event `parts` decode to, one push per part. */
function decode (parts: string[]): unknown[] {
  const d = new SseJsonDecoder()
  const out: unknown[] = []
  for (const p of parts) d.push(enc(p), out)
  return out
}

async function * body (parts: Array<string | Uint8Array>): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield typeof p === 'string' ? enc(p) : p
}

describe('SseJsonDecoder', () => {
  it('takes data: with or without the space after the colon (one space only is dropped)', () => {
    expect(decode(['data:{"a":1}\n\n', 'data: {"b":2}\n\n', 'data:  {"c":3}\n\n'])).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }])
  })

  it('joins the data lines of one event with newlines, in either form', () => {
    expect(decode(['data:{"a":\ndata: [1,\ndata:2]}\n\n'])).toEqual([{ a: [1, 2] }])
  })

  it('ends lines at LF or CRLF, a CR only at the end of a line; a blank CRLF line ends the event', () => {
    expect(decode(['data: {"a":1}\r\n\r\ndata: {"b":"x\\ry"}\n\n'])).toEqual([{ a: 1 }, { b: 'x\ry' }])
  })

  it('keeps a line split across pushes, even right after its CR, and a blank line without data ends nothing', () => {
    expect(decode(['\n\ndata: {"a"', ':1}\r', '\n', '\r\n'])).toEqual([{ a: 1 }])
    expect(decode(['data', ': {"b":2}\n', '\n'])).toEqual([{ b: 2 }])
  })

  it('ignores comments, other fields and a line that merely contains data:', () => {
    expect(decode([': ping\nevent: x\nid: 1\nretry: 5\nxdata: {"no":1}\n\ndata: {"yes":1}\n\n'])).toEqual([{ yes: 1 }])
  })

  it('stops at [DONE] (also followed by more text), ignoring everything after it, even in the same push', () => {
    const d = new SseJsonDecoder()
    const out: unknown[] = []
    d.push(enc('data: {"a":1}\n\ndata: [DONE]\n\ndata: {"b":2}\n\n'), out)
    expect(d.done).toBe(true)
    d.push(enc('data: {"c":3}\n\n'), out)
    expect(out).toEqual([{ a: 1 }])
    expect(decode(['data: [DONE] now\n\ndata: {"x":1}\n\n'])).toEqual([])
  })

  it('a data payload of JSON null is an event', () => {
    expect(decode(['data: null\n\n'])).toEqual([null])
  })

  it('throws APIError for an error payload, SyntaxError for a malformed one, after the good events before it', () => {
    const d = new SseJsonDecoder()
    const out: unknown[] = []
    expect(() => d.push(enc('data: {"a":1}\n\ndata: {"error":{"message":"overloaded"}}\n\n'), out)).toThrow(APIError)
    expect(out).toEqual([{ a: 1 }])
    const bad: unknown[] = []
    expect(() => new SseJsonDecoder().push(enc('data: {"a":1}\n\ndata: {oops\n\n'), bad)).toThrow(SyntaxError)
    expect(bad).toEqual([{ a: 1 }])
    // An `error` field that is empty fails nothing.
    expect(decode(['data: {"error":null,"a":1}\n\n'])).toEqual([{ error: null, a: 1 }])
  })

  it('fails a line with no end past the cap, not one at it', () => {
    const d = new SseJsonDecoder()
    const out: unknown[] = []
    d.push(enc(`data: "${'x'.repeat(MAX_SSE_EVENT_CHARS - 7)}`), out) // 7 + n characters: at the cap
    expect(() => d.push(enc('x'), out)).toThrow(new SyntaxError(`an event of the stream is over ${MAX_SSE_EVENT_CHARS} characters`))
    expect(out).toEqual([])
  })

  it('fails an event of many data lines past the cap, and starts clean after it', () => {
    const d = new SseJsonDecoder()
    const out: unknown[] = []
    const line = `data: ${'y'.repeat(1023)}\n` // 1023 characters of data each, plus the newline joining them
    const lines = MAX_SSE_EVENT_CHARS / 1024
    d.push(enc(line.repeat(lines - 1)), out)
    expect(() => d.push(enc(line.repeat(2)), out)).toThrow(SyntaxError)
    d.push(enc('\ndata: {"after":1}\n\n'), out)
    expect(out).toEqual([{ after: 1 }])
  })

  it('counts only the event in progress against the cap, not one already handed out', () => {
    const d = new SseJsonDecoder()
    const out: unknown[] = []
    d.push(enc(`data: "${'a'.repeat(1_000)}"\n\n`), out)
    d.push(enc(`data: "${'x'.repeat(MAX_SSE_EVENT_CHARS - 7)}`), out) // at the cap, with no end yet
    expect(out).toEqual(['a'.repeat(1_000)])
  })

  it('keeps a multi-byte character split across pushes', () => {
    const bytes = enc('data: {"t":"é🚀"}\n\n')
    const d = new SseJsonDecoder()
    const out: unknown[] = []
    for (let i = 0; i < bytes.length; i++) d.push(bytes.subarray(i, i + 1), out)
    expect(out).toEqual([{ t: 'é🚀' }])
  })
})

describe('sseJsonBatches', () => {
  const collect = async (parts: Array<string | Uint8Array>) => {
    const batches: unknown[][] = []
    for await (const b of sseJsonBatches(body(parts))) batches.push(b)
    return batches
  }

  it('yields one batch per read that completed events, none for a read that did not', async () => {
    expect(await collect(['data: {"a":1}\n\ndata: {"a":', '2}\n\n', ': only a comment\n\n', 'data: {"a":3}\n\n'])).toEqual([[{ a: 1 }], [{ a: 2 }], [{ a: 3 }]])
  })

  it('hands over the good events of a read before failing on a bad one', async () => {
    const batches: unknown[][] = []
    const run = (async () => { for await (const b of sseJsonBatches(body(['data: {"a":1}\n\ndata: {"b":2}\n\ndata: nope\n\n']))) batches.push(b) })()
    await expect(run).rejects.toBeInstanceOf(SyntaxError)
    expect(batches).toEqual([[{ a: 1 }, { b: 2 }]])
    const none: unknown[][] = []
    const first = (async () => { for await (const b of sseJsonBatches(body(['data: nope\n\n']))) none.push(b) })()
    await expect(first).rejects.toBeInstanceOf(SyntaxError)
    expect(none).toEqual([])
  })

  it('reads the body to its end after [DONE] without decoding it', async () => {
    let reads = 0
    async function * counted (): AsyncGenerator<Uint8Array> {
      for (const p of ['data: {"a":1}\n\ndata: [DONE]\n\n', 'data: {"late":1}\n\n', 'garbage that would not parse\n\n']) { reads++; yield enc(p) }
    }
    const batches: unknown[][] = []
    for await (const b of sseJsonBatches(counted())) batches.push(b)
    expect(batches).toEqual([[{ a: 1 }]])
    expect(reads).toBe(3)
  })
})
