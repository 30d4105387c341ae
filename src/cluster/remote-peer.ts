/** Owner side of cluster mode: a socket that reached another instance, as the chat layer sees it (a Peer). */
import type { Peer } from '../chat/peer.js'
import type { Logger } from '../logger.js'
import type { Meter } from '../metrics/meter.js'
import type { ServerFrame } from '../protocol.js'

/** A peer whose frames go to the instance that holds the socket. */
export interface RemotePeer extends Peer {
  /** The socket left (its instance said so, stopped answering, or the bus went down): closed without a close frame. */
  gone (): void
}

/**
 * Its frames go to the node's outbox (one bus message per instance per loop turn); a session whose sockets are all
 * on its owner has no RemotePeer, so it publishes nothing.
 */
export function createRemotePeer ({ send, close, via, connectionId, address, log, meter }: {
  /** Queues one frame for the socket. */
  send: (frame: string) => void
  /** Sends the frames queued so far, then the close; false when the bus is down. */
  close: (code: number, reason: string) => boolean
  /** The socket's instance. */
  via: string
  connectionId: string
  address?: string
  log: Logger
  meter?: Meter
}): RemotePeer {
  let closed = false
  const closeFns = new Set<() => void>()
  const gone = (): void => {
    if (closed) return
    closed = true
    for (const fn of [...closeFns]) fn()
    closeFns.clear()
  }
  const peer: RemotePeer = {
    connectionId,
    via,
    ...(address === undefined ? {} : { address }),
    lastSentSeq: 0,
    log,
    get open () { return !closed },
    sendRaw (data) {
      if (!closed) send(data)
    },
    send (frame: ServerFrame) {
      if (frame.type === 'error') meter?.error(frame.code)
      peer.sendRaw(JSON.stringify(frame))
    },
    close (code, reason) {
      if (closed) return
      close(code, reason)
      gone()
    },
    onClose (fn) {
      if (closed) { fn(); return () => {} }
      closeFns.add(fn)
      return () => { closeFns.delete(fn) }
    },
    gone
  }
  return peer
}
