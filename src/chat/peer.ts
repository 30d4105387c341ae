/** One attached WebSocket as the chat layer sees it: sends batched per event-loop turn, with a send-buffer bound. */
import { randomUUID } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import type { Logger } from '../logger.js'
import type { Meter } from '../metrics/meter.js'
import { CloseCode, type ServerFrame } from '../protocol.js'

export interface Peer {
  readonly connectionId: string
  /** The client's address (the socket's, or the one a trusted proxy forwarded): the key of per-address limits. */
  readonly address?: string
  /** Highest stored seq this socket has been sent; stored events at or below it are never sent twice. */
  lastSentSeq: number
  /** Sends an already-serialised frame (one JSON.stringify per broadcast, shared by every socket). */
  sendRaw (data: string): void
  send (frame: ServerFrame): void
  /** Sends what is queued, then the close frame. */
  close (code: number, reason: string): void
  readonly open: boolean
  /** Calls `fn` once when the socket has closed (at once if it has); returns a function that cancels it. */
  onClose (fn: () => void): () => void
  /** Cluster mode: the instance the socket is on, when that is not this one. */
  readonly via?: string
  /** Lines about this socket (sessionId, connectionId, principal, client); the session's logger when absent. */
  log?: Logger
}

/**
 * Frames are queued and written when the event loop has run every I/O callback that was ready
 * (`setImmediate`): a socket's frames of one turn of the loop leave in one corked write, and the writes to
 * all sockets leave back to back. Each frame is still its own WebSocket message, in order, and nothing waits
 * longer than the loop turn it was produced in. Receivers that are asleep are woken once per batch instead
 * of once per token, which was most of the kernel time of a relay (see README, Performance).
 */
interface Batched { flush (): void }
let dirty: Batched[] = []
/** Called once the batch being gathered is written (the sampled added-latency measure). */
let flushed: Array<() => void> = []
const flushAll = (): void => {
  const batch = dirty
  dirty = []
  // One socket's failure must not cost the others their frames (nor, from a setImmediate, the process).
  for (const b of batch) {
    try { b.flush() } catch { /* flush closes its own socket on failure */ }
  }
  if (flushed.length > 0) {
    const done = flushed
    flushed = []
    for (const fn of done) fn()
  }
}

/** Runs `fn` after the frames queued so far are written to their sockets (a frame must have been queued). */
export function whenFlushed (fn: () => void): void {
  flushed.push(fn)
}

/** Bytes written under one cork before the send buffer is checked again (a replay can be megabytes). */
const CHUNK_BYTES = 64 * 1024

/**
 * Wraps a `ws` socket; `stream` is its TCP socket (the upgrade request's; absent under `inject`), corked around
 * a batch so that several frames cost one system call. Over `maxBufferedBytes` of unsent data the client is
 * too slow: close 4408 (it can resume).
 */
export function createPeer (socket: WebSocket, { maxBufferedBytes, stream, address, meter }: { maxBufferedBytes: number; stream?: Duplex; address?: string; meter?: Meter }): Peer {
  let closing = false
  let queue: string[] = []
  const tooSlow = () => socket.bufferedAmount > maxBufferedBytes
  /** Writes in corked chunks; false when the send buffer passed the bound (the rest is not written). */
  const write = (frames: string[], bounded: boolean): boolean => {
    let i = 0
    while (i < frames.length && socket.readyState === socket.OPEN) {
      if (bounded && tooSlow()) return false
      let bytes = 0
      stream?.cork()
      try {
        for (; i < frames.length && bytes < CHUNK_BYTES; i++) {
          socket.send(frames[i])
          bytes += frames[i].length
        }
      } finally {
        stream?.uncork()
      }
    }
    return true
  }
  const take = () => {
    const frames = queue
    queue = []
    return frames
  }
  // The socket's state is read once per chunk of a batch, not per frame: the hot path only queues.
  const batch: Batched = {
    flush () {
      const frames = take()
      if (closing || frames.length === 0) return
      let ok = false
      try {
        ok = write(frames, true)
      } finally {
        // A socket that cannot take its frames (too slow, or a write that threw) is closed: the client resumes.
        if (!ok) peer.close(CloseCode.tooSlow, 'client too slow: send buffer over limit, reconnect with ?after=<last seq>')
      }
    }
  }
  const peer: Peer = {
    connectionId: randomUUID(),
    ...(address === undefined ? {} : { address }),
    lastSentSeq: 0,
    get open () { return !closing && socket.readyState === socket.OPEN },
    sendRaw (data) {
      if (closing) return
      if (queue.push(data) === 1 && dirty.push(batch) === 1) setImmediate(flushAll)
    },
    send (frame) {
      if (frame.type === 'error') meter?.error(frame.code)
      peer.sendRaw(JSON.stringify(frame))
    },
    onClose (fn) {
      if (socket.readyState === socket.CLOSED) { fn(); return () => {} }
      socket.once('close', fn)
      return () => { socket.off('close', fn) }
    },
    close (code, reason) {
      if (closing) return
      closing = true
      try { write(take(), false) } catch { /* the close below still goes out, or terminate ends it */ }
      if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, reason)
      // A peer that never reads would hold the close handshake open forever.
      setTimeout(() => { if (socket.readyState !== socket.CLOSED) socket.terminate() }, 5_000).unref()
    }
  }
  return peer
}
