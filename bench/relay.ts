/** Baseline relay: the thinnest `ws` + `openai` SDK server speaking the app's frames, with no store, validation or logging — the floor. */
import { createServer } from 'node:http'
import OpenAI from 'openai'
import type { ChatCompletionChunk } from 'openai/resources/chat/completions'
import { WebSocketServer, type WebSocket } from 'ws'

// Env: HOST, PORT, OPENAI_BASE_URL, OPENAI_API_KEY. RELAY_FETCH=lean is the app's design with nothing else: its transport
// (src/llm/lean-fetch.ts, src/llm/sse-decoder.ts: each network read of SSE becomes one delta frame) and its sends
// batched per event-loop turn (as src/chat/peer.ts does) — the floor for the app's own design. RELAY_FETCH=raw reads the
// upstream through raw-stream.ts (no HTTP parser, SSE decoder or JSON.parse) with the same batched sends: about the least
// a Node server that reads each token from its own HTTP/1.1 stream and sends it as it arrives can cost.
const env = process.env
const lean = env.RELAY_FETCH === 'lean' ? { ...await import('../src/llm/lean-fetch.js'), ...await import('../src/llm/sse-decoder.js') } : undefined
const raw = env.RELAY_FETCH === 'raw' ? await import('./raw-stream.js') : undefined
const batched = lean !== undefined || raw !== undefined
const client = new OpenAI({ apiKey: env.OPENAI_API_KEY ?? 'bench', baseURL: env.OPENAI_BASE_URL, maxRetries: 0, fetch: lean?.createLeanFetch() })
const model = env.LLM_MODEL ?? 'gpt-4o-mini'

const server = createServer((req, res) => {
  if (req.url === '/health') res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
  else res.writeHead(404).end()
})
const wss = new WebSocketServer({ noServer: true })

server.on('upgrade', (req, socket, head) => {
  const m = /^\/ws\/session\/([A-Za-z0-9_-]{1,64})(?:\?|$)/.exec(req.url ?? '')
  if (!m) { socket.destroy(); return }
  wss.handleUpgrade(req, socket, head, (ws) => { onSession(ws, m[1]) })
})

/** Streams one answer to `onPiece`: a delta per SDK chunk (relay), per network read (relay-lean, relay-raw). */
async function streamAnswer ({ content, signal, onPiece }: { content: string, signal: AbortSignal, onPiece: (piece: string) => void }) {
  const body = { model, messages: [{ role: 'user' as const, content }], stream: true as const }
  if (raw) {
    await new Promise<void>((resolve, reject) => {
      const stream = raw.rawCompletion({ url: new URL(env.OPENAI_BASE_URL ?? ''), body: JSON.stringify(body), onPiece, onEnd: (err) => { if (err) reject(err); else resolve() } })
      signal.addEventListener('abort', stream.abort, { once: true })
    })
    return
  }
  const request = client.chat.completions.create(body, { signal })
  if (lean) {
    const res = await request.asResponse()
    for await (const batch of lean.sseJsonBatches(res.body as unknown as AsyncIterable<Uint8Array>)) {
      let piece = ''
      for (const chunk of batch as ChatCompletionChunk[]) piece += chunk.choices[0]?.delta?.content ?? ''
      if (piece) onPiece(piece)
    }
    return
  }
  for await (const chunk of await request) {
    const piece = chunk.choices[0]?.delta?.content
    if (piece) onPiece(piece)
  }
}

let queued: Array<[WebSocket, string]> = []
const flush = () => {
  const batch = queued
  queued = []
  for (const [ws, data] of batch) if (ws.readyState === ws.OPEN) ws.send(data)
}
const later = (ws: WebSocket, data: string) => { if (queued.push([ws, data]) === 1) setImmediate(flush) }

function onSession (ws: WebSocket, sessionId: string) {
  let seq = 0
  let abort: AbortController | undefined
  const send = (frame: object) => {
    if (ws.readyState !== ws.OPEN) return
    if (batched) later(ws, JSON.stringify(frame))
    else ws.send(JSON.stringify(frame))
  }
  send({
    type: 'session', protocol: 1, sessionId, resumed: false, lastSeq: 0, runningTurnId: null,
    model: { provider: 'openai', name: model, offline: false }, tools: [], limits: { maxMessageChars: 8000, maxMessageBytes: 65536 }
  })

  const runTurn = async (content: string) => {
    const turnId = `t${++seq}`
    send({ type: 'user_message', seq, ts: new Date().toISOString(), turnId, content })
    abort = new AbortController()
    let text = ''
    let index = 0
    let finishReason = 'stop'
    try {
      await streamAnswer({ content, signal: abort.signal, onPiece: (piece) => { text += piece; send({ type: 'delta', turnId, index: index++, text: piece }) } })
    } catch (err) {
      finishReason = abort.signal.aborted ? 'cancelled' : 'error'
      if (finishReason === 'error') send({ type: 'error', code: 'llm_error', message: (err as Error).message, retryable: true, turnId })
    }
    send({ type: 'assistant_message', seq: ++seq, ts: new Date().toISOString(), turnId, content: text, finishReason })
  }

  ws.on('message', (data) => {
    let frame: { type?: string, content?: string }
    try { frame = JSON.parse(String(data)) } catch { return }
    if (frame.type === 'user_message' && typeof frame.content === 'string') void runTurn(frame.content)
    else if (frame.type === 'ping') send({ type: 'pong' })
  })
  ws.on('close', () => abort?.abort())
  ws.on('error', () => abort?.abort())
}

server.listen(Number(env.PORT ?? 8001), env.HOST ?? '127.0.0.1')
process.on('SIGTERM', () => {
  for (const ws of wss.clients) ws.terminate()
  server.close(() => process.exit(0))
})
