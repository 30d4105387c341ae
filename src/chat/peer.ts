/** One attached WebSocket as the chat layer sees it: serialised sends with a send-buffer bound. */
import { randomUUID } from 'node:crypto'
import type { WebSocket } from 'ws'
import { CloseCode, type ServerFrame } from '../protocol.js'

export interface Peer {
  readonly connectionId: string
  /** Highest stored seq this socket has been sent; stored events at or below it are never sent twice. */
  lastSentSeq: number
  /** Sends an already-serialised frame (one JSON.stringify per broadcast, shared by every socket). */
  sendRaw (data: string): void
  send (frame: ServerFrame): void
  close (code: number, reason: string): void
  readonly open: boolean
}

/** Wraps a `ws` socket. Over `maxBufferedBytes` of unsent data the client is too slow: close 4408 (it can resume). */
export function createPeer (socket: WebSocket, { maxBufferedBytes }: { maxBufferedBytes: number }): Peer {
  let closing = false
  const peer: Peer = {
    connectionId: randomUUID(),
    lastSentSeq: 0,
    get open () { return !closing && socket.readyState === socket.OPEN },
    sendRaw (data) {
      if (!peer.open) return
      if (socket.bufferedAmount > maxBufferedBytes) {
        peer.close(CloseCode.tooSlow, 'client too slow: send buffer over limit, reconnect with ?after=<last seq>')
        return
      }
      socket.send(data)
    },
    send (frame) { peer.sendRaw(JSON.stringify(frame)) },
    close (code, reason) {
      if (closing) return
      closing = true
      if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, reason)
      // A peer that never reads would hold the close handshake open forever.
      setTimeout(() => { if (socket.readyState !== socket.CLOSED) socket.terminate() }, 5_000).unref()
    }
  }
  return peer
}
