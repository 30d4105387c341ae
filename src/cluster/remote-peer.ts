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

/** Most characters in one bus message: a replay of thousands of events leaves in several. */
const MAX_MESSAGE_CHARS = 256 * 1024

/**
 * Frames are gathered per event-loop turn, like a local socket's, and leave as one bus message (a line each):
 * a token costs one publish per instance that holds a socket of the session, never one for a session whose
 * sockets are all on its owner (no RemotePeer exists then).
 */
export function createRemotePeer ({ publish, via, connectionId, address, log, meter }: {
  /** Publishes one message's body of the given kind to the socket's instance; false when the bus is down. */
  publish: (kind: 'o' | 'c', body: string) => boolean
  /** The socket's instance. */
  via: string
  connectionId: string
  address?: string
  log: Logger
  meter?: Meter
}): RemotePeer {
  let closed = false
  let queue: string[] = []
  const closeFns = new Set<() => void>()
  const gone = (): void => {
    if (closed) return
    closed = true
    queue = []
    for (const fn of [...closeFns]) fn()
    closeFns.clear()
  }
  const flush = (): void => {
    const frames = queue
    queue = []
    if (closed || frames.length === 0) return
    let start = 0
    let chars = 0
    for (let i = 0; i <= frames.length; i++) {
      if (i === frames.length || (i > start && chars + frames[i].length > MAX_MESSAGE_CHARS)) {
        if (!publish('o', frames.slice(start, i).join('\n'))) {
          log.warn('cluster bus down: dropping a socket on another instance (it resumes)')
          gone()
          return
        }
        start = i
        chars = 0
      }
      if (i < frames.length) chars += frames[i].length + 1
    }
  }
  const peer: RemotePeer = {
    connectionId,
    via,
    ...(address === undefined ? {} : { address }),
    lastSentSeq: 0,
    log,
    get open () { return !closed },
    sendRaw (data) {
      if (closed) return
      if (queue.push(data) === 1) setImmediate(flush)
    },
    send (frame: ServerFrame) {
      if (frame.type === 'error') meter?.error(frame.code)
      peer.sendRaw(JSON.stringify(frame))
    },
    close (code, reason) {
      if (closed) return
      flush()
      publish('c', `${code} ${reason}`)
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
