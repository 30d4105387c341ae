/** A scripted OpenAI-compatible Chat Completions server for tests and the benchmark (node:http on 127.0.0.1:0). */
/*
 *   const fake = await startFakeOpenAI()
 *   fake.script(sse(textChunks('Hello there')), sse(toolCallChunks([...]), { delayMs: 5 }), fail(500))
 *   const client = new OpenAI({ apiKey: 'test', baseURL: fake.url })   // fake.url = 'http://127.0.0.1:PORT/v1'
 *   const req = await fake.request(0)           // resolves when request #0 (0-based) has arrived and its body is parsed
 *   await fake.clientClosed(0)                  // resolves when the client closed request #0's connection before the reply ended
 *   fake.requests[0].body                       // parsed JSON body; .aborted = closed by the client early
 *   await fake.close()
 *
 * Every `POST /v1/chat/completions` takes the next scripted reply, in order; when the script is
 * empty the `fallback` reply is used (default: a 500 naming the request number). Reply kinds:
 * - `sse(chunks, opts)`: `data: {json}\n\n` per chunk then `data: [DONE]\n\n`. Options: `delayMs` between
 *   chunks, `headersDelayMs` before the status line, `firstChunkDelayMs` after headers before chunk 0,
 *   `cutAfter: n` (destroy the socket after n chunks), `malformedAt: n` (a non-JSON event in place of chunk n),
 *   `splitAt: n` (chunk n's event goes out in two TCP writes, split inside a multi-byte character when it
 *   has one), `done: false` (end without `[DONE]`), `hangAfter: n` (send n chunks, then nothing until the client leaves),
 *   `afterDone: 'hang' | 'cut' | ms` (after `[DONE]` keep the body open until the client leaves, destroy the
 *   socket, or end the body in a later TCP write), `endlessLine: bytes` (after the chunks a `data:` line that
 *   never ends, written `bytes` at a time until the client leaves; `endlessBytes` on the request counts them).
 * - `json(body, { delayMs, headersDelayMs })`: a non-streaming reply; `completion(text)` builds a body.
 * - `fail(status, body?, headers?)`: an error status with a JSON body (OpenAI's `{ error: {...} }` shape by default).
 * Chunk builders: `textChunks`, `toolCallChunks`, `usageChunk`, `emptyChoicesChunk`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { EventEmitter, once } from 'node:events'

export interface SseOptions {
  delayMs?: number
  headersDelayMs?: number
  firstChunkDelayMs?: number
  cutAfter?: number
  malformedAt?: number
  splitAt?: number
  done?: boolean
  hangAfter?: number
  /** After `[DONE]`: 'hang' keeps the body open until the client leaves, 'cut' destroys the socket, a number ends the body that many ms later. */
  afterDone?: 'hang' | 'cut' | number
  /** After the chunks: `data: ` and then this many bytes of `x` per write, never a newline, until the client leaves. */
  endlessLine?: number
}

export type FakeReply =
  | { kind: 'sse'; chunks: unknown[]; opts: SseOptions }
  | { kind: 'json'; body: unknown; delayMs?: number; headersDelayMs?: number }
  | { kind: 'fail'; status: number; body: unknown; headers: Record<string, string> }

export interface RecordedRequest {
  /** 0-based arrival order. */
  n: number
  method: string
  url: string
  headers: IncomingMessage['headers']
  /** Parsed JSON body (undefined when it was not JSON). */
  body: any
  /** The reply kind used. */
  reply: FakeReply['kind']
  /** The client closed the connection before the reply was finished. */
  aborted: boolean
  /** The reply was written to the end. */
  finished: boolean
  /** Bytes of an `endlessLine` written before the client left. */
  endlessBytes: number
}

export interface FakeOpenAI {
  /** Base URL for the SDK, ending in /v1. */
  readonly url: string
  readonly requests: RecordedRequest[]
  /** Appends replies to the script. */
  script (...replies: FakeReply[]): void
  /** Replies still unused. */
  pending (): number
  /** Used when the script is empty. */
  fallback: FakeReply | ((n: number) => FakeReply)
  /** Resolves when request n (0-based) has arrived and its body is parsed. */
  request (n: number): Promise<RecordedRequest>
  /** Resolves when the client closed request n's connection before the reply ended. */
  clientClosed (n: number): Promise<RecordedRequest>
  /** TCP connections accepted so far (keep-alive reuse shows as fewer connections than requests). */
  readonly connections: number
  /** Completion requests whose reply is still open, and the most there ever were at once. */
  readonly inFlight: number
  readonly maxInFlight: number
  /** Emits 'request' (RecordedRequest) and 'client-closed' (RecordedRequest). */
  readonly events: EventEmitter
  close (): Promise<void>
}

// ── chunk builders ───────────────────────────────────────────────────────────────
const base = (id: string) => ({ id, object: 'chat.completion.chunk', created: 1_700_000_000, model: 'fake-model' })

export function chunk (delta: Record<string, unknown>, opts: { id?: string; finishReason?: string | null } = {}): Record<string, unknown> {
  return { ...base(opts.id ?? 'chatcmpl-fake'), choices: [{ index: 0, delta, logprobs: null, finish_reason: opts.finishReason ?? null }] }
}

/** Reasoning deltas word by word under `field` (`reasoning_content`: DeepSeek, llama.cpp; `reasoning`: vLLM, OpenRouter), no finish chunk. */
export function reasoningChunks (text: string, field: 'reasoning_content' | 'reasoning', opts: { id?: string } = {}): Record<string, unknown>[] {
  return (text.match(/\S+\s*|\s+/g) ?? []).map((piece) => chunk({ content: null, [field]: piece }, opts))
}

/** Role chunk, the text in pieces of `perChunk` characters (default: word by word), then a finish chunk. */
export function textChunks (text: string, opts: { id?: string; perChunk?: number; finishReason?: string } = {}): Record<string, unknown>[] {
  const pieces = opts.perChunk ? (text.match(new RegExp(`[\\s\\S]{1,${opts.perChunk}}`, 'gu')) ?? []) : (text.match(/\S+\s*|\s+/g) ?? [])
  return [
    chunk({ role: 'assistant', content: '' }, opts),
    ...pieces.map((p) => chunk({ content: p }, opts)),
    chunk({}, { ...opts, finishReason: opts.finishReason ?? 'stop' })
  ]
}

/** Tool calls of one step: per call a header fragment (id, name), then its arguments in `splitArgsInto` pieces; then finish 'tool_calls'. */
export function toolCallChunks (calls: Array<{ id: string; name: string; args: string }>, opts: { id?: string; splitArgsInto?: number; text?: string } = {}): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [chunk({ role: 'assistant', content: opts.text ?? null }, opts)]
  calls.forEach((c, index) => {
    out.push(chunk({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }, opts))
    const n = Math.max(1, opts.splitArgsInto ?? 1)
    const size = Math.ceil(c.args.length / n) || 1
    for (let i = 0; i < c.args.length; i += size) {
      out.push(chunk({ tool_calls: [{ index, function: { arguments: c.args.slice(i, i + size) } }] }, opts))
    }
  })
  out.push(chunk({}, { ...opts, finishReason: 'tool_calls' }))
  return out
}

/** The trailing chunk `stream_options.include_usage` asks for: `choices: []` plus usage. */
export function usageChunk (u: { prompt: number; completion: number }, opts: { id?: string } = {}): Record<string, unknown> {
  return { ...base(opts.id ?? 'chatcmpl-fake'), choices: [], usage: { prompt_tokens: u.prompt, completion_tokens: u.completion, total_tokens: u.prompt + u.completion } }
}

/** Azure's leading prompt-filter chunk: `choices: []`. */
export function emptyChoicesChunk (): Record<string, unknown> {
  return { id: '', object: '', created: 0, model: '', choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] }
}

/** A non-streaming `chat.completion` body. */
export function completion (text: string, usage = { prompt: 10, completion: 5 }): Record<string, unknown> {
  return {
    id: 'chatcmpl-fake', object: 'chat.completion', created: 1_700_000_000, model: 'fake-model',
    choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion }
  }
}

// ── reply builders ──────────────────────────────────────────────────────────────
export const sse = (chunks: unknown[], opts: SseOptions = {}): FakeReply => ({ kind: 'sse', chunks, opts })
export const json = (body: unknown, opts: { delayMs?: number; headersDelayMs?: number } = {}): FakeReply => ({ kind: 'json', body, ...opts })
export const fail = (status: number, body?: unknown, headers: Record<string, string> = {}): FakeReply => ({
  kind: 'fail', status, headers, body: body ?? { error: { message: `fake upstream error ${status}`, type: 'fake_error', code: null, param: null } }
})

// ── server ────────────────────────────────────────────────────────────────────────
const event = (data: unknown) => Buffer.from(`data: ${JSON.stringify(data)}\n\n`, 'utf8')

/** Split point inside a multi-byte UTF-8 character when there is one, else the middle. */
function splitPoint (buf: Buffer): number {
  for (let i = 1; i < buf.length; i++) if ((buf[i] & 0xc0) === 0x80) return i
  return Math.floor(buf.length / 2)
}

export async function startFakeOpenAI (): Promise<FakeOpenAI> {
  const queue: FakeReply[] = []
  const requests: RecordedRequest[] = []
  const events = new EventEmitter()
  events.setMaxListeners(0)
  const sockets = new Set<import('node:net').Socket>()
  let connections = 0
  let inFlight = 0
  let maxInFlight = 0

  const waitFor = (name: string, n: number, done: (r: RecordedRequest) => boolean): Promise<RecordedRequest> => {
    const r = requests[n]
    if (r && done(r)) return Promise.resolve(r)
    return new Promise((resolve) => {
      const on = (rec: RecordedRequest) => {
        if (rec.n === n && done(rec)) { events.off(name, on); resolve(rec) }
      }
      events.on(name, on)
    })
  }

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parts: Buffer[] = []
    for await (const p of req) parts.push(p as Buffer)
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }))
      return
    }
    let body: any
    try { body = JSON.parse(Buffer.concat(parts).toString('utf8')) } catch { body = undefined }
    const n = requests.length
    const reply = queue.shift() ?? (typeof fake.fallback === 'function' ? fake.fallback(n) : fake.fallback)
    const rec: RecordedRequest = { n, method: req.method, url: req.url, headers: req.headers, body, reply: reply.kind, aborted: false, finished: false, endlessBytes: 0 }
    requests.push(rec)
    let closed = false
    let cutByUs = false
    maxInFlight = Math.max(maxInFlight, ++inFlight)
    res.on('close', () => {
      inFlight--
      closed = true
      if (!res.writableFinished && !cutByUs) { rec.aborted = true; events.emit('client-closed', rec) }
    })
    events.emit('request', rec)

    const wait = (ms = 0) => new Promise<void>((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)))
    const finish = () => { rec.finished = true }
    // Resolves once the bytes are handed to the socket, so a cut right after cannot swallow them.
    const write = (data: string | Buffer) => new Promise<void>((resolve) => {
      if (closed) { resolve(); return }
      res.once('close', resolve)
      res.write(data, () => { res.off('close', resolve); resolve() })
    })
    const cut = async () => { cutByUs = true; await wait(5); res.socket?.destroy() }

    if (reply.kind === 'fail') {
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers }).end(JSON.stringify(reply.body), finish)
      return
    }
    if (reply.kind === 'json') {
      if (reply.headersDelayMs) await wait(reply.headersDelayMs)
      if (reply.delayMs) await wait(reply.delayMs)
      if (closed) return
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body), finish)
      return
    }
    const o = reply.opts
    if (o.headersDelayMs) await wait(o.headersDelayMs)
    if (closed) return
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    res.flushHeaders()
    if (o.firstChunkDelayMs) await wait(o.firstChunkDelayMs)
    for (let i = 0; i < reply.chunks.length; i++) {
      if (closed) return
      if (o.cutAfter === i) { await cut(); return }
      if (o.hangAfter === i) return
      if (i > 0 && o.delayMs) await wait(o.delayMs)
      if (closed) return
      if (o.malformedAt === i) { await write('data: {"id": "broken", "choices": [\n\n'); continue }
      const buf = event(reply.chunks[i])
      if (o.splitAt === i) {
        const at = splitPoint(buf)
        await write(buf.subarray(0, at))
        await wait(15) // separate TCP segments: the client must see two reads
        if (closed) return
        await write(buf.subarray(at))
      } else {
        await write(buf)
      }
    }
    if (o.cutAfter === reply.chunks.length) { await cut(); return }
    if (o.hangAfter === reply.chunks.length) return
    if (o.endlessLine) {
      const junk = Buffer.alloc(o.endlessLine, 'x')
      await write('data: ')
      while (!closed) { rec.endlessBytes += junk.length; await write(junk) }
      return
    }
    if (o.done !== false) res.write('data: [DONE]\n\n')
    if (o.afterDone === 'hang') return
    if (o.afterDone === 'cut') { await wait(15); await cut(); return }
    if (typeof o.afterDone === 'number') await wait(o.afterDone)
    res.end(finish)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err))
      else res.destroy()
    })
  })
  server.on('connection', (s) => { connections++; sockets.add(s); s.on('close', () => sockets.delete(s)) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo

  const fake: FakeOpenAI = {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    events,
    get connections () { return connections },
    get inFlight () { return inFlight },
    get maxInFlight () { return maxInFlight },
    fallback: (n) => fail(500, { error: { message: `fake-openai: no scripted reply for request #${n}`, type: 'fake_error' } }),
    script (...replies) { queue.push(...replies) },
    pending: () => queue.length,
    request: (n) => waitFor('request', n, () => true),
    clientClosed: (n) => waitFor('client-closed', n, (r) => r.aborted),
    async close () {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
  return fake
}
