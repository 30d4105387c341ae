/** Reads a streaming Chat Completions body push-style: each network read's chunks are handed over synchronously. */
import { Readable } from 'node:stream'
import { SseJsonDecoder } from './sse-decoder.js'

export interface SseReader {
  /** Settles when the body has ended (after `[DONE]` the rest is read and ignored) or failed. */
  readonly done: Promise<void>
  /** Stops and restarts the reads, for a consumer that falls behind. */
  pause (): void
  resume (): void
}

/**
 * `onBatch` gets the parsed events of every read, in order, from the read's own callback (no promise per
 * read). `done` rejects with a malformed or `error` payload (after the good events before it were handed
 * over), with what `onBatch` threw, or with the body's error (connection lost, aborted); the body is then destroyed.
 * `body` is a node Readable (the lean fetch) or a WHATWG ReadableStream (any other fetch).
 */
export function readSse (body: unknown, onBatch: (chunks: unknown[]) => void): SseReader {
  const stream = body instanceof Readable ? body : Readable.fromWeb(body as import('node:stream/web').ReadableStream)
  const decoder = new SseJsonDecoder()
  const done = new Promise<void>((resolve, reject) => {
    const fail = (err: unknown) => {
      stream.off('data', onData)
      reject(err)
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
        fail(err)
        return
      }
      if (decodeError) fail(decodeError.err)
    }
    stream.on('data', onData)
    stream.once('end', resolve)
    stream.once('error', fail)
    // A body destroyed without an error (a reset the parser did not report) did not end: that is a failure too.
    stream.once('close', () => { fail(new Error('model stream closed before its end')) })
  })
  return { done, pause: () => stream.pause(), resume: () => stream.resume() }
}
