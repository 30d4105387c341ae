/** A lean Server-Sent Events decoder for a streaming Chat Completions body: bytes in, parsed `data` payloads out. */
import { StringDecoder } from 'node:string_decoder'
import { APIError } from 'openai'

/**
 * The most an event (its data lines, or a line still without its end) may hold: 4 Mi characters, far above any
 * real chunk. A broken endpoint or proxy streaming without newlines would otherwise grow the buffer until the
 * process runs out of memory, taking every session with it; past this the stream fails like a malformed one.
 */
export const MAX_SSE_EVENT_CHARS = 4 * 1024 * 1024

/**
 * Push decoder: `push(bytes, out)` appends every event completed by these bytes to `out` (as parsed JSON)
 * and returns synchronously, so one network read costs no promise. After `[DONE]` it ignores the rest
 * (`done` is true); the caller should still read the body to its end, as the SDK does, or the keep-alive
 * connection is destroyed. A malformed payload throws SyntaxError and an `error` payload throws the SDK's
 * APIError, as the SDK's own stream does, after the good events before it were appended to `out`.
 * Lines end in LF or CRLF; `event:`, `id:`, `retry:` and comments carry nothing a Chat Completions stream needs.
 */
export class SseJsonDecoder {
  done = false
  // Node's StringDecoder keeps a character split across reads, like TextDecoder's stream mode, at a fraction of its cost.
  // Stryker disable next-line StringLiteral: StringDecoder's default encoding is utf8
  private readonly decoder = new StringDecoder('utf8')
  private buf = ''
  private data = ''
  private hasData = false

  push (bytes: Uint8Array, out: unknown[]): void {
    if (this.done) return
    let buf = this.buf + this.decoder.write(bytes as Buffer)
    let start = 0
    try {
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n', start)) {
        // buf[start - 1] is the previous line's LF (or nothing at 0), so a CR before nl always belongs to this line.
        const line = buf.charCodeAt(nl - 1) === 13 ? buf.slice(start, nl - 1) : buf.slice(start, nl)
        start = nl + 1
        if (line === '') {
          // A blank line ends the event.
          if (this.hasData) {
            const data = this.data
            this.data = ''
            this.hasData = false
            if (data.startsWith('[DONE]')) {
              this.done = true
              // Stryker disable next-line StringLiteral: once done, push returns before reading buf again
              buf = ''
              start = 0
              return
            }
            const parsed = JSON.parse(data) as { error?: unknown } | null
            // Like the SDK: an `error` payload fails the stream whatever the event name.
            if (parsed?.error) throw new APIError(undefined, parsed.error, undefined, undefined)
            out.push(parsed)
          }
        } else if (line.startsWith('data:')) {
          const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5)
          this.data = this.hasData ? `${this.data}\n${value}` : value
          this.hasData = true
        }
      }
    } finally {
      // Stryker disable next-line ConditionalExpression: slice(0) has the same text; the test only saves a copy
      this.buf = start === 0 ? buf : buf.slice(start)
    }
    if (this.buf.length + this.data.length > MAX_SSE_EVENT_CHARS) {
      // Stryker disable next-line StringLiteral: the stream fails here and the caller drops the decoder: this only frees memory
      this.buf = ''
      // Stryker disable next-line StringLiteral: as above; hasData false makes the next data line overwrite it
      this.data = ''
      this.hasData = false
      throw new SyntaxError(`an event of the stream is over ${MAX_SSE_EVENT_CHARS} characters`)
    }
  }
}

/**
 * The decoder over an async iterable body (use with the SDK's `create(...).asResponse()`): per network read
 * it yields every complete event's parsed `data`, so a read carrying several chunks costs one await.
 * Reads the body to its end after `[DONE]`.
 */
export async function * sseJsonBatches (body: AsyncIterable<Uint8Array>): AsyncGenerator<unknown[]> {
  const decoder = new SseJsonDecoder()
  for await (const bytes of body) {
    // Stryker disable next-line ConditionalExpression: a done decoder's push returns at once, so the batch stays empty
    if (decoder.done) continue
    const batch: unknown[] = []
    try {
      decoder.push(bytes, batch)
    } catch (err) {
      // The good events before a malformed one still count: hand them over, then fail.
      if (batch.length > 0) yield batch
      throw err
    }
    if (batch.length > 0) yield batch
  }
}
