/** Fake OpenAI-compatible upstream for the benchmark: streams T timed tokens at R tokens/s after a set TTFT, in its own process. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { encodeToken, nowMs } from './token-codec.js'
import { createStreamScheduler, type Stream } from './upstream-scheduler.js'

export interface UpstreamOptions {
  /** Tokens per answer (T); a request's last user message may override with `T=<n>`. */
  tokens: number
  /** Tokens per second per stream (R); override `R=<n>`. */
  rate: number
  /** Time to first token in ms; override `F=<n>`. */
  ttftMs: number
  port?: number
}

export interface UpstreamStats {
  requests: number
  streamsActive: number
  tokensEmitted: number
  /** How late the upstream itself emitted tokens versus their schedule (ms): its own saturation, not the server's. */
  lateP99Ms: number
  lateMaxMs: number
}

const CHUNK_HEAD = 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_bench","choices":[{"index":0,"delta":'
const ROLE_CHUNK = `${CHUNK_HEAD}{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}\n\n`
const contentChunk = (text: string) => `${CHUNK_HEAD}{"content":"${text}"},"logprobs":null,"finish_reason":null}]}\n\n`
const STOP_CHUNK = `${CHUNK_HEAD}{},"logprobs":null,"finish_reason":"stop"}]}\n\n`
const usageChunk = (completion: number) =>
  'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],' +
  `"usage":{"prompt_tokens":10,"completion_tokens":${completion},"total_tokens":${10 + completion}}}\n\n`

/** `T=`, `R=` or `F=` in the last user message overrides the default for that request. */
const override = ({ content, key, def }: { content: string, key: 'T' | 'R' | 'F', def: number }): number => {
  const m = new RegExp(`\\b${key}=(\\d+(?:\\.\\d+)?)`).exec(content)
  return m ? Number(m[1]) : def
}

function lastUserContent (body: unknown): string {
  const messages = (body as { messages?: Array<{ role?: string, content?: unknown }> })?.messages ?? []
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === 'user' && typeof messages[i].content === 'string') return messages[i].content as string
  }
  return ''
}

async function readJson (req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = []
  for await (const part of req) parts.push(part as Buffer)
  return JSON.parse(Buffer.concat(parts).toString('utf8') || '{}')
}

/** Starts the upstream on 127.0.0.1; resolves once it listens. */
export async function startUpstream (opts: UpstreamOptions) {
  let requests = 0
  const scheduler = createStreamScheduler({
    emit: (s: Stream, now: number) => {
      const text = encodeToken({ seq: s.seq, emitMs: now, arrivalMs: s.seq === 0 ? s.arrivalMs : undefined })
      const out = s.seq === 0 ? ROLE_CHUNK + contentChunk(text) : contentChunk(text)
      if (s.seq + 1 < s.total) { s.res.write(out); return }
      s.res.end(out + STOP_CHUNK + (s.usage ? usageChunk(s.total) : '') + 'data: [DONE]\n\n')
    }
  })

  const completions = async (req: IncomingMessage, res: ServerResponse) => {
    const arrivalMs = nowMs()
    requests++
    const body = await readJson(req) as { stream?: boolean, stream_options?: { include_usage?: boolean } }
    const content = lastUserContent(body)
    const total = Math.max(1, Math.floor(override({ content, key: 'T', def: opts.tokens })))
    if (body.stream !== true) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({
        id: 'chatcmpl-bench', object: 'chat.completion', created: 1700000000, model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: 'bench summary', refusal: null }, logprobs: null, finish_reason: 'stop' }],
        usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 }
      }))
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    res.flushHeaders()
    const rate = override({ content, key: 'R', def: opts.rate })
    const ttftMs = override({ content, key: 'F', def: opts.ttftMs })
    const stream: Stream = {
      res, seq: 0, total, arrivalMs, dueMs: arrivalMs + ttftMs, intervalMs: 1000 / rate,
      usage: body.stream_options?.include_usage === true, done: false
    }
    res.on('close', () => { stream.done = true })
    scheduler.add(stream)
  }

  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.method === 'GET' && req.url === '/clock') {
      res.end(String(nowMs()))
    } else if (req.method === 'POST' && req.url?.endsWith('/chat/completions')) {
      completions(req, res).catch((err: Error) => { res.writeHead(400).end(JSON.stringify({ error: { message: err.message } })) })
    } else {
      res.writeHead(404).end('{"error":{"message":"not found"}}')
    }
  })
  server.listen(opts.port ?? 0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const stats = (reset = true): UpstreamStats => { const out = { requests, ...scheduler.stats(reset) }; if (reset) requests = 0; return out }
  const close = async () => {
    scheduler.stop()
    server.closeAllConnections()
    server.close()
  }
  return { port, stats, close }
}

// Entry: `node --import tsx bench/upstream.ts --tokens 200 --rate 60 --ttft 500`; talks to its parent over IPC.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { tokens: { type: 'string', default: '200' }, rate: { type: 'string', default: '60' }, ttft: { type: 'string', default: '500' } } })
  const up = await startUpstream({ tokens: Number(values.tokens), rate: Number(values.rate), ttftMs: Number(values.ttft) })
  process.on('message', (msg: { type?: string }) => {
    if (msg.type === 'stats') process.send?.({ type: 'stats', stats: up.stats() })
  })
  process.on('disconnect', () => { void up.close().then(() => process.exit(0)) })
  process.on('SIGTERM', () => { void up.close().then(() => process.exit(0)) })
  process.send?.({ type: 'ready', port: up.port, pid: process.pid })
}
