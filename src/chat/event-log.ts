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
  // Stryker disable next-line ConditionalExpression,EqualityOperator: splicing none changes nothing; the test only saves a call
  if (n > 0) list.splice(0, n)
}

/** Index of the event with this seq in a list ascending by seq (gaps allowed), or -1. */
function indexOf (list: readonly StoredEvent[], seq: number): number {
  let lo = 0
  let hi = list.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const s = list[mid].seq
    if (s === seq) return mid
    // Stryker disable next-line EqualityOperator: s === seq returned just above
    if (s < seq) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}

export class EventLog {
  private tail: StoredEvent[] = []
  private conversation: StoredEvent[] = []
  private readonly clientSeqs = new Map<string, number>()
  private readonly open = new Set<string>()
  /** Seqs of events in memory the store has not settled yet (stored, or refused for good). */
  private readonly unsettled = new Set<number>()
  /** Seq ranges [first, last] no event of this log holds: lost in a crash, or reserved and never used (DESIGN §11). */
  // Stryker disable next-line ArrayDeclaration: a string entry destructures into letters, which no seq compares within
  private readonly gaps: Array<[number, number]> = []
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
    // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: pushed anyway, [last + 1, seq - 1] is empty and holds no seq (only memory would tell)
    if (event.seq > this.last + 1) {
      this.gaps.push([this.last + 1, event.seq - 1])
    }
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
        if (stored === false) this.forget(event)
      }, done)
    }
    trim(this.tail, this.keep, (e) => !this.unsettled.has(e.seq))
    trim(this.conversation, this.keep, () => true)
  }

  /**
   * An event the store refused for good leaves memory too, so a resume from memory gives what a resume from
   * the store gives: a gap at its seq. A refused message was never acknowledged: it is not replayed as if it
   * had been, and its clientId may be sent again and run.
   */
  private forget (event: StoredEvent): void {
    const at = indexOf(this.tail, event.seq)
    // Stryker disable next-line ConditionalExpression: an unsettled event is never trimmed, so a refused one is always found
    if (at !== -1) this.tail.splice(at, 1)
    const inContext = indexOf(this.conversation, event.seq)
    if (inContext !== -1) this.conversation.splice(inContext, 1)
    // Stryker disable next-line ConditionalExpression,LogicalOperator: only user messages carry a clientId, and get(undefined) is never a seq
    if (event.type === 'user_message' && event.clientId && this.clientSeqs.get(event.clientId) === event.seq) {
      this.clientSeqs.delete(event.clientId)
    }
  }

  /**
   * Numbering goes on after `seq`: the seqs up to it that the log lacks were reserved by an earlier run that
   * died, and may have reached clients (DESIGN §11). They are never used again, and a resume from one is a reset.
   */
  skipTo (seq: number): void {
    // Stryker disable next-line EqualityOperator: at seq === last the gap pushed is empty and last stays
    if (seq <= this.last) return
    this.gaps.push([this.last + 1, seq])
    this.last = seq
  }

  /** True when no event of this log holds `seq` though later ones exist: what a client saw there was lost. */
  lost (seq: number): boolean {
    for (const [first, last] of this.gaps) if (seq >= first && seq <= last) return true
    return false
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

  /** The event with this seq when it is in memory (the log has a gap where the store refused or lost one). */
  at (seq: number): StoredEvent | undefined {
    const i = indexOf(this.tail, seq)
    // Stryker disable next-line ConditionalExpression: tail[-1] is undefined too
    return i === -1 ? undefined : this.tail[i]
  }
}
