/**
 * Owner side: the frames of every remote socket, gathered per event-loop turn and per instance, leave as one bus
 * message per instance (`link<TAB>frame` a line; JSON text holds neither a raw tab nor a raw newline). A token of a
 * session with sockets on two other instances costs two publishes per loop turn, shared with every other session's
 * tokens of that turn, instead of one publish per socket per turn.
 */

/** Most characters in one bus message: a replay of thousands of events leaves in several. */
const MAX_MESSAGE_CHARS = 256 * 1024

export interface Outbox {
  /** Queues one frame for `link` on `instance`; it leaves with the loop turn's others. */
  push (instance: string, link: string, frame: string): void
  /** Sends what is queued now (before a close, so that the close comes after the frames). */
  flush (): void
}

/** `publish` sends one message body to an instance; false when the bus is down (what was queued is dropped then). */
export function createOutbox (publish: (instance: string, body: string) => boolean): Outbox {
  let queued = new Map<string, string[]>()
  let scheduled = false
  const flush = (): void => {
    scheduled = false
    if (queued.size === 0) return
    const all = queued
    queued = new Map()
    for (const [instance, lines] of all) {
      let start = 0
      let chars = 0
      for (let i = 0; i <= lines.length; i++) {
        if (i === lines.length || (i > start && chars + lines[i].length > MAX_MESSAGE_CHARS)) {
          if (!publish(instance, lines.slice(start, i).join('\n'))) break
          start = i
          chars = 0
        }
        if (i < lines.length) chars += lines[i].length + 1
      }
    }
  }
  return {
    push (instance, link, frame) {
      const lines = queued.get(instance)
      if (lines) lines.push(`${link}\t${frame}`)
      else queued.set(instance, [`${link}\t${frame}`])
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    },
    flush
  }
}
