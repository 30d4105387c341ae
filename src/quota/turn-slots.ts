/** The model budget (MAX_CONCURRENT_TURNS): slots taken by turns, a fair bounded queue behind them, summaries last. */

/** What a turn is told while it waits: its 1-based place in the order the queue will serve. */
export type OnPosition = (position: number) => void

export type SlotTicket =
  | { type: 'full'; retryAfterMs: number }
  /** `granted` resolves true once the slot is held, false when `signal` aborted first (nothing is held then). */
  | { type: 'waiting'; granted: Promise<boolean>; release: () => void }

export interface TurnSlots {
  /**
   * Takes a slot for a turn of `key` (its owner, else its client address) or queues it, round-robin over keys.
   * Synchronous, so a full queue refuses a message before it is stored. `release` is idempotent: call it when
   * the turn ends (after `granted`), or at any time to leave the queue.
   */
  acquire (opts: { key: string; onPosition?: OnPosition; signal: AbortSignal }): SlotTicket
  /** A background job's slot (summaries): taken only when no turn waits, at most `lowLimit` at once. */
  acquireLow (signal: AbortSignal): Promise<() => void>
  stats (): { running: number; limit: number; queued: number; maxQueued: number; lowRunning: number }
}

interface Waiter { key: string; grant: () => void; onPosition?: OnPosition; position: number }

/** A guess for `retryAfterMs` when the queue is full: about one turn's length. */
const FULL_RETRY_MS = 5_000

export function createTurnSlots ({ limit, maxQueued, lowLimit }: { limit: number; maxQueued: number; lowLimit: number }): TurnSlots {
  let running = 0
  let lowRunning = 0
  let queued = 0
  /** Waiters by key; the Map's order is the round-robin ring (the key served moves to the end). */
  const queues = new Map<string, Waiter[]>()
  const lowWaiters: Array<() => void> = []

  /** Every waiter's place: round r serves each key's r-th waiter, keys in ring order. */
  const renumber = (): void => {
    let position = 0
    const lists = [...queues.values()]
    for (let round = 0; ; round++) {
      let any = false
      for (const list of lists) {
        const w = list[round]
        if (!w) continue
        any = true
        if (w.position !== ++position) {
          w.position = position
          w.onPosition?.(position)
        }
      }
      if (!any) return
    }
  }

  const remove = (w: Waiter): boolean => {
    const list = queues.get(w.key)
    // Stryker disable next-line OptionalChaining,UnaryOperator: a waiter not yet granted is always in its key's list
    const at = list?.indexOf(w) ?? -1
    // Stryker disable next-line ConditionalExpression,LogicalOperator,BooleanLiteral: as above
    if (!list || at < 0) return false
    list.splice(at, 1)
    if (list.length === 0) queues.delete(w.key)
    queued--
    return true
  }

  /** Hands freed slots to the next turns, then to summaries when no turn waits. */
  const pump = (): void => {
    // Stryker disable next-line BooleanLiteral: renumbering a queue that did not move tells nobody anything
    let moved = false
    while (running + lowRunning < limit && queued > 0) {
      const [key, list] = queues.entries().next().value as [string, Waiter[]]
      const w = list.shift()!
      queues.delete(key)
      if (list.length > 0) queues.set(key, list)
      queued--
      running++
      moved = true
      w.grant()
    }
    // Summaries only when no turn waits.
    // Stryker disable next-line ConditionalExpression: after the loop above a waiting turn means no slot is free, which the loop checks too
    const noTurnWaits = queued === 0
    while (noTurnWaits && running + lowRunning < limit && lowRunning < lowLimit && lowWaiters.length > 0) {
      lowRunning++
      lowWaiters.shift()!()
    }
    // Stryker disable next-line ConditionalExpression: renumbering a queue that did not move tells nobody anything
    if (moved) renumber()
  }

  return {
    acquire ({ key, onPosition, signal }) {
      let held = false
      let waiter: Waiter | undefined
      let released = false
      const release = (): void => {
        if (released) return
        released = true
        if (held) { running--; pump() } else if (waiter && remove(waiter)) { renumber(); pump() }
      }
      if (signal.aborted) return { type: 'waiting', granted: Promise.resolve(false), release }
      // Stryker disable next-line ConditionalExpression: pump() fills a free slot from the queue at once, so a free slot never meets waiters here
      if (running + lowRunning < limit && queued === 0) {
        running++
        held = true
        return { type: 'waiting', granted: Promise.resolve(true), release }
      }
      if (queued >= maxQueued) return { type: 'full', retryAfterMs: FULL_RETRY_MS }
      const granted = new Promise<boolean>((resolve) => {
        const onAbort = (): void => { release(); resolve(false) }
        waiter = {
          key,
          position: 0,
          ...(onPosition ? { onPosition } : {}),
          grant: () => { held = true; signal.removeEventListener('abort', onAbort); resolve(true) }
        }
        signal.addEventListener('abort', onAbort, { once: true })
      })
      const list = queues.get(key)
      if (list) list.push(waiter!)
      else queues.set(key, [waiter!])
      queued++
      renumber()
      return { type: 'waiting', granted, release }
    },
    async acquireLow (signal) {
      signal.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const take = (): void => { signal.removeEventListener('abort', onAbort); resolve() }
        const onAbort = (): void => {
          const at = lowWaiters.indexOf(take)
          // Stryker disable next-line ConditionalExpression: take() removes this listener before the waiter leaves the list
          if (at >= 0) lowWaiters.splice(at, 1)
          reject(signal.reason)
        }
        signal.addEventListener('abort', onAbort, { once: true })
        lowWaiters.push(take)
        pump()
      })
      let released = false
      return () => {
        if (released) return
        released = true
        lowRunning--
        pump()
      }
    },
    stats: () => ({ running, limit, queued, maxQueued, lowRunning })
  }
}
