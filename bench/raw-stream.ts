/**
 * The least a Node process can do per token with this upstream: a measuring stick for `relay-raw`, not a client.
 * One `node:net` connection per request (closed at `data: [DONE]`), the request written by hand, and each read scanned for
 * `"delta":{"content":"…"` by string search — no HTTP parser, no chunked decoding, no SSE decoder, no JSON.parse.
 * It only works with bench/upstream.ts (its tokens hold no quotes or escapes, its chunks keep that exact layout).
 */
import net from 'node:net'

const MARK = '"delta":{"content":"'

export interface RawStream { abort: () => void }

/** Streams one completion: `onPiece` per read that holds content (a read's pieces joined), `onEnd` once. */
export function rawCompletion ({ url, body, onPiece, onEnd }: {
  url: URL
  body: string
  onPiece: (text: string) => void
  onEnd: (err?: Error) => void
}): RawStream {
  const socket = net.connect(Number(url.port), url.hostname)
  socket.setNoDelay(true)
  socket.setEncoding('utf8')
  const path = `${url.pathname.replace(/\/$/, '')}/chat/completions`
  socket.write(`POST ${path} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  let tail = ''
  let ended = false
  const end = (err?: Error) => { if (!ended) { ended = true; onEnd(err) } }
  socket.on('data', (data: string) => {
    const buf = tail + data
    // Keep an event cut by the read for the next one: scan up to the last complete event.
    const last = buf.lastIndexOf('\n\n')
    const cut = last < 0 ? 0 : last + 2
    tail = buf.slice(cut)
    let piece = ''
    for (let at = buf.indexOf(MARK); at >= 0 && at < cut; at = buf.indexOf(MARK, at)) {
      at += MARK.length
      const close = buf.indexOf('"', at)
      piece += buf.slice(at, close)
      at = close
    }
    if (piece) onPiece(piece)
    // The upstream keeps the connection alive whatever the request says: `[DONE]` ends the answer.
    if (cut > 0 && buf.includes('data: [DONE]', cut - 16)) { socket.destroy(); end() }
  })
  socket.on('end', () => { end() })
  socket.on('error', (err) => { end(err) })
  socket.on('close', () => { end() })
  return { abort: () => { socket.destroy(); end(new Error('aborted')) } }
}
