/**
 * A live session's event log in memory, bounded: the most recent events (older ones are read back from
 * the store when a socket resumes from before them), the seq of every user message by clientId, and the
 * turns still open. An event leaves memory only once the store has settled it, so a resume never asks
 * the store for an event it does not have yet.
 */
import type { StoredEvent } from '../protocol.js'

export class EventLog {
  private tail: StoredEvent[] = []
  private readonly clientSeqs = new Map<string, number>()
  private readonly open = new Set<string>()
  /** Seqs of events in memory the store has not settled yet (stored, or refused for good). */
  private readonly unsettled = new Set<number>()
  private last = 0

  /** `keep`: how many recent events stay in memory (more while the store is behind). */
  constructor (private readonly keep: number) {}

  /** Adds the next event; `settled` (the store's write) keeps it in memory until it resolves. */
  add (event: StoredEvent, settled?: Promise<unknown>): void {
    this.tail.push(event)
    this.last = event.seq
    if (event.type === 'user_message') {
      this.open.add(event.turnId)
      if (event.clientId) this.clientSeqs.set(event.clientId, event.seq)
    } else if (event.type === 'assistant_message') {
      this.open.delete(event.turnId)
    }
    if (settled) {
      this.unsettled.add(event.seq)
      const done = () => { this.unsettled.delete(event.seq) }
      settled.then(done, done)
    }
    // Trimmed in steps of a quarter of `keep`, so a busy session does not shift the array on every event.
    if (this.tail.length >= this.keep + Math.max(1, this.keep >> 2)) this.trim()
  }

  /** The events in memory, ascending: every event with seq ≥ firstSeq. */
  get events (): readonly StoredEvent[] { return this.tail }
  get lastSeq (): number { return this.last }
  /** Seq of the oldest event in memory (lastSeq + 1 when there is none): older ones are only in the store. */
  get firstSeq (): number { return this.tail[0]?.seq ?? this.last + 1 }
  /** Turn ids of user messages that have no assistant_message. */
  get openTurns (): string[] { return [...this.open] }

  /** The seq of the user message sent with this clientId, whether or not it is still in memory. */
  clientSeq (clientId: string): number | undefined { return this.clientSeqs.get(clientId) }

  /** The event with this seq when it is still in memory (seqs are dense). */
  at (seq: number): StoredEvent | undefined {
    const first = this.tail[0]?.seq
    return first === undefined ? undefined : this.tail[seq - first]
  }

  private trim (): void {
    const excess = this.tail.length - this.keep
    let n = 0
    while (n < excess && !this.unsettled.has(this.tail[n].seq)) n++
    if (n > 0) this.tail.splice(0, n)
  }
}
