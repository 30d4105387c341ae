/**
 * A live session's event log in memory, bounded: the most recent events (older ones are read back from
 * the store when a socket resumes from before them), the most recent conversation events (the model's
 * context, so reconnects cannot push the conversation out), the seq of every user message by clientId,
 * and the turns still open. An event leaves memory only once the store has settled it, so a resume never
 * asks the store for an event it does not have yet.
 */
import type { StoredEvent } from '../protocol.js'

const CONVERSATION = new Set<StoredEvent['type']>(['user_message', 'tool_call', 'tool_result', 'assistant_message'])

/** Drops the oldest entries beyond `keep` that `mayDrop` allows, in steps of a quarter of `keep` (no shift per event). */
function trim (list: StoredEvent[], keep: number, mayDrop: (e: StoredEvent) => boolean): void {
  if (list.length < keep + Math.max(1, keep >> 2)) return
  const excess = list.length - keep
  let n = 0
  while (n < excess && mayDrop(list[n])) n++
  if (n > 0) list.splice(0, n)
}

export class EventLog {
  private tail: StoredEvent[] = []
  private conversation: StoredEvent[] = []
  private readonly clientSeqs = new Map<string, number>()
  private readonly open = new Set<string>()
  /** Seqs of events in memory the store has not settled yet (stored, or refused for good). */
  private readonly unsettled = new Set<number>()
  private last = 0

  /**
   * `keep`: how many recent events stay in memory (more while the store is behind), and how many recent
   * conversation events the model's context is built from — at most twice `keep` events in all.
   */
  constructor (private readonly keep: number) {}

  /**
   * Adds the next event; `settled` (the store's write: true stored, false refused for good) keeps it in
   * memory until it resolves.
   */
  add (event: StoredEvent, settled?: Promise<unknown>): void {
    this.tail.push(event)
    this.last = event.seq
    if (CONVERSATION.has(event.type)) this.conversation.push(event)
    if (event.type === 'user_message') {
      this.open.add(event.turnId)
      if (event.clientId) this.clientSeqs.set(event.clientId, event.seq)
    } else if (event.type === 'assistant_message') {
      this.open.delete(event.turnId)
    }
    if (settled) {
      this.unsettled.add(event.seq)
      const done = () => { this.unsettled.delete(event.seq) }
      settled.then((stored) => {
        done()
        // A message the store refused for good was never acknowledged: its clientId may be sent again and run.
        if (stored === false && event.type === 'user_message' && event.clientId && this.clientSeqs.get(event.clientId) === event.seq) {
          this.clientSeqs.delete(event.clientId)
        }
      }, done)
    }
    trim(this.tail, this.keep, (e) => !this.unsettled.has(e.seq))
    trim(this.conversation, this.keep, () => true)
  }

  /** The events in memory, ascending: every event with seq ≥ firstSeq the store has (or will have). */
  get events (): readonly StoredEvent[] { return this.tail }
  /** The most recent user, tool and assistant events, ascending: what the model's context is built from. */
  get context (): readonly StoredEvent[] { return this.conversation }
  get lastSeq (): number { return this.last }
  /** Seq of the oldest event in memory (lastSeq + 1 when there is none): older ones are only in the store. */
  get firstSeq (): number { return this.tail[0]?.seq ?? this.last + 1 }
  /** Turn ids of user messages that have no assistant_message. */
  get openTurns (): string[] { return [...this.open] }

  /** The seq of the user message sent with this clientId (unless the store refused it), in memory or not. */
  clientSeq (clientId: string): number | undefined { return this.clientSeqs.get(clientId) }

  /** The event with this seq when it is in memory (a log loaded from a store that lost an event has a gap). */
  at (seq: number): StoredEvent | undefined {
    let lo = 0
    let hi = this.tail.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const s = this.tail[mid].seq
      if (s === seq) return this.tail[mid]
      if (s < seq) lo = mid + 1
      else hi = mid - 1
    }
    return undefined
  }
}
