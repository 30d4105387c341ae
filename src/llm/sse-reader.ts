/** Reads a streaming Chat Completions body push-style: each network read's chunks are handed over synchronously. */
import { Readable } from 'node:stream'
import { SseJsonDecoder } from './sse-decoder.js'

export interface SseReader {
  /** Settles when the body has ended, or failed; after `[DONE]` see `graceAfterDoneMs`. */
  readonly done: Promise<void>
  /** True once `[DONE]` arrived: the answer is complete, whatever the rest of the body does. */
  readonly sawDone: boolean
  /** Stops and restarts the reads, for a consumer that falls behind. */
  pause (): void
  resume (): void
}

export interface SseReaderOptions {
  /**
   * After `[DONE]` the rest of the body is read and ignored, so the keep-alive connection can be reused.
   * A body that does not end within this many ms after it (default 1 s), or breaks, is destroyed and
   * `done` resolves all the same: the answer was complete.
   */
  graceAfterDoneMs?: number
}

/**
 * `onBatch` gets the parsed events of every read, in order, from the read's own callback (no promise per
 * read). Before `[DONE]`, `done` rejects with a malformed or `error` payload (after the good events before it
 * were handed over), with the body's error (connection lost, aborted), or when the body closes without
 * ending; what `onBatch` throws always rejects it. The body is then destroyed.
 * `body` is a node Readable (the lean fetch) or a WHATWG ReadableStream (any other fetch).
 */
export function readSse (body: unknown, onBatch: (chunks: unknown[]) => void, opts: SseReaderOptions = {}): SseReader {
  const stream = body instanceof Readable ? body : Readable.fromWeb(body as import('node:stream/web').ReadableStream)
  const decoder = new SseJsonDecoder()
  const graceMs = opts.graceAfterDoneMs ?? 1_000
  let grace: NodeJS.Timeout | undefined
  const done = new Promise<void>((resolve, reject) => {
    let settled = false
    const settle = (err?: unknown, evenAfterDone = false) => {
      if (settled) return
      settled = true
      clearTimeout(grace)
      stream.off('data', onData)
      if (err === undefined) { resolve(); return }
      if (decoder.done && !evenAfterDone) resolve()
      else reject(err)
      stream.destroy()
    }
    const onData = (bytes: Buffer) => {
      if (decoder.done) return
      const batch: unknown[] = []
      let decodeError: { err: unknown } | undefined
      try { decoder.push(bytes, batch) } catch (err) { decodeError = { err } }
      try {
        if (batch.length > 0) onBatch(batch)
      } catch (err) {
        settle(err, true)
        return
      }
      if (decodeError) settle(decodeError.err)
      else if (decoder.done) {
        grace = setTimeout(() => { settle(new Error('model stream held open after [DONE]')) }, graceMs)
        grace.unref()
      }
    }
    stream.on('data', onData)
    stream.once('end', () => { settle() })
    stream.once('error', (err) => { settle(err) })
    // A body destroyed without an error (a reset the parser did not report) did not end: that is a failure too.
    stream.once('close', () => { settle(new Error('model stream closed before its end')) })
  })
  return { done, get sawDone () { return decoder.done }, pause: () => stream.pause(), resume: () => stream.resume() }
}
