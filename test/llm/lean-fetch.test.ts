/** The openai SDK streams, fails and aborts the same through createLeanFetch as through the global fetch. */
import OpenAI, { APIError } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLeanFetch } from '../../src/llm/lean-fetch.js'
import { sseJsonBatches } from '../../src/llm/sse-decoder.js'
import { completion, fail, json, sse, startFakeOpenAI, textChunks, toolCallChunks, usageChunk, type FakeOpenAI, type FakeReply } from '../support/fake-openai.js'

let fake: FakeOpenAI
beforeAll(async () => { fake = await startFakeOpenAI() })
afterAll(async () => { await fake.close() })

const clients = () => ({
  global: new OpenAI({ apiKey: 'k-test', baseURL: fake.url, maxRetries: 0, logLevel: 'off' }),
  lean: new OpenAI({ apiKey: 'k-test', baseURL: fake.url, maxRetries: 0, logLevel: 'off', fetch: createLeanFetch() })
})

/** Runs the same scripted reply through both clients; returns what each saw (chunks, then the error if any). */
async function both (reply: FakeReply, run: (c: OpenAI) => Promise<unknown[]>) {
  const out: Record<string, { items: unknown[], error?: unknown }> = {}
  for (const [name, client] of Object.entries(clients())) {
    fake.script(reply)
    const items: unknown[] = []
    try {
      items.push(...await run(client))
      out[name] = { items }
    } catch (error) {
      out[name] = { items, error }
    }
  }
  return out as { global: { items: unknown[], error?: unknown }, lean: { items: unknown[], error?: unknown } }
}

const streamAll = async (c: OpenAI) => {
  const got: unknown[] = []
  const stream = await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } })
  for await (const chunk of stream) got.push(chunk)
  return got
}

describe('createLeanFetch', () => {
  it('streams text, a split multi-byte event, tool calls and usage exactly like the global fetch', async () => {
    const chunks = [
      ...textChunks('Grüße, 世界 — naïve café 🚀 done.').slice(0, -1),
      ...toolCallChunks([{ id: 'call_1', name: 'lookup', args: '{"q":"ü"}' }], { splitArgsInto: 3 }),
      usageChunk({ prompt: 7, completion: 11 })
    ]
    const first = fake.requests.length
    const r = await both(sse(chunks, { splitAt: 2 }), streamAll)
    expect(r.global.error).toBeUndefined()
    expect(r.lean.error).toBeUndefined()
    expect(r.lean.items).toHaveLength(chunks.length)
    expect(r.lean.items).toEqual(r.global.items)
    expect(r.lean.items).toEqual(chunks)
    const [g, l] = [fake.requests[first], fake.requests[first + 1]]
    expect(l.body).toEqual(g.body)
    expect(l.headers.authorization).toBe('Bearer k-test')
    expect(l.headers['content-type']).toBe(g.headers['content-type'])
  })

  it('returns the same non-streaming completion', async () => {
    const r = await both(json(completion('plain answer')), async (c) => {
      const res = await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })
      return [res.choices[0].message.content, res.usage?.total_tokens]
    })
    expect(r.lean).toEqual({ items: ['plain answer', 15] })
    expect(r.lean).toEqual(r.global)
  })

  it('raises the same APIError for an error status', async () => {
    const r = await both(fail(429, { error: { message: 'slow down', type: 'rate_limit', code: 'rate_limit_exceeded' } }), streamAll)
    for (const side of [r.global, r.lean]) {
      expect(side.error).toBeInstanceOf(APIError)
      expect((side.error as APIError).status).toBe(429)
    }
    expect((r.lean.error as APIError).message).toBe((r.global.error as APIError).message)
    expect((r.lean.error as APIError).code).toBe('rate_limit_exceeded')
  })

  it('fails both ways on a malformed event and on a stream cut mid-answer', async () => {
    const malformed = await both(sse(textChunks('a b c d'), { malformedAt: 2 }), streamAll)
    expect(malformed.lean.error).toBeInstanceOf(SyntaxError)
    expect(malformed.global.error).toBeInstanceOf(SyntaxError)
    const cut = await both(sse(textChunks('a b c d e f'), { cutAfter: 3 }), streamAll)
    expect(cut.global.error).toBeInstanceOf(Error)
    expect(cut.lean.error).toBeInstanceOf(Error)
  })

  it('aborts the HTTP request mid-stream when the signal fires, ending the iteration quietly', async () => {
    const { lean } = clients()
    fake.script(sse(textChunks('one two three four'), { hangAfter: 3 }))
    const n = fake.requests.length
    const ac = new AbortController()
    const got: unknown[] = []
    let error: unknown
    try {
      const stream = await lean.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true }, { signal: ac.signal })
      for await (const chunk of stream) {
        got.push(chunk)
        if (got.length === 3) ac.abort()
      }
    } catch (err) { error = err }
    expect(got).toHaveLength(3)
    expect(error === undefined || (error as Error).name === 'APIUserAbortError' || (error as Error).name === 'AbortError').toBe(true)
    const rec = await fake.clientClosed(n)
    expect(rec.aborted).toBe(true)
  })

  it('rejects with an AbortError before the response when already aborted or aborted while waiting', async () => {
    const leanFetch = createLeanFetch()
    const ac = new AbortController()
    ac.abort()
    await expect(leanFetch(`${fake.url}/chat/completions`, { method: 'POST', body: '{}', signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' })
    fake.script(json(completion('late'), { headersDelayMs: 2000 }))
    const ac2 = new AbortController()
    const pending = leanFetch(`${fake.url}/chat/completions`, { method: 'POST', body: '{}', signal: ac2.signal })
    setImmediate(() => ac2.abort())
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('reuses one keep-alive connection for sequential requests', async () => {
    fake.script(...[0, 1, 2].map(() => json(completion('ok'))))
    const before = fake.connections
    const client = new OpenAI({ apiKey: 'k', baseURL: fake.url, maxRetries: 0, fetch: createLeanFetch() })
    for (let i = 0; i < 3; i++) {
      const res = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `n${i}` }] })
      expect(res.choices[0].message.content).toBe('ok')
    }
    expect(fake.connections - before).toBe(1)
  })
})

const bytes = async function * (parts: Array<string | Buffer>) { for (const p of parts) yield typeof p === 'string' ? Buffer.from(p) : p }
const collect = async (body: AsyncIterable<Uint8Array>) => { const out: unknown[][] = []; for await (const b of sseJsonBatches(body)) out.push(b); return out }

describe('sseJsonBatches', () => {
  it('decodes the SDK-requested stream to the same chunks as the SDK, through the lean fetch and the global fetch', async () => {
    const chunks = [...textChunks('Grüße 世界 🚀 and more words here'), usageChunk({ prompt: 3, completion: 9 })]
    for (const fetchImpl of [createLeanFetch(), undefined]) {
      fake.script(sse(chunks, { splitAt: 3 }))
      const client = new OpenAI({ apiKey: 'k', baseURL: fake.url, maxRetries: 0, logLevel: 'off', ...(fetchImpl ? { fetch: fetchImpl } : {}) })
      const res = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true }).asResponse()
      const batches = await collect(res.body as unknown as AsyncIterable<Uint8Array>)
      expect(batches.flat()).toEqual(chunks)
    }
  })

  it('groups the events of one read, joins multi-line data, skips comments and fields, accepts CRLF, stops at [DONE]', async () => {
    const parts = [
      ': keep-alive comment\n\ndata: {"a":1}\n\ndata: {"a":2}\n\n',
      'event: message\r\nid: 7\r\ndata: {"b":\r\ndata: 3}\r\n\r\ndata: {"c":"',
      Buffer.from('é"}\n\n').subarray(0, 1), Buffer.from('é"}\n\n').subarray(1),
      'data: [DONE]\n\ndata: {"after":true}\n\n'
    ]
    expect(await collect(bytes(parts))).toEqual([[{ a: 1 }, { a: 2 }], [{ b: 3 }], [{ c: 'é' }]])
  })

  it('reads the body to its end after [DONE], so sequential streams reuse one keep-alive connection', async () => {
    // The end of the chunked body arrives in a later read than [DONE].
    fake.script(...[0, 1, 2].map(() => sse([textChunks('hi there')[1]], { afterDone: 20 })))
    const before = fake.connections
    const client = new OpenAI({ apiKey: 'k', baseURL: fake.url, maxRetries: 0, fetch: createLeanFetch() })
    for (let i = 0; i < 3; i++) {
      const res = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true }).asResponse()
      expect((await collect(res.body as unknown as AsyncIterable<Uint8Array>)).flat()).toEqual([textChunks('hi there')[1]])
    }
    expect(fake.connections - before).toBe(1)
  })

  it('throws the SDK APIError for an error payload and SyntaxError for a malformed one', async () => {
    await expect(collect(bytes(['data: {"error":{"message":"overloaded","type":"server_error"}}\n\n']))).rejects.toBeInstanceOf(APIError)
    await expect(collect(bytes(['data: {"a":\n\n']))).rejects.toBeInstanceOf(SyntaxError)
  })
})
