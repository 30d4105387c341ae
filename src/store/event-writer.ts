/** The batching, retrying EventWriter in front of every store: accepts now, stores soon, never drops, never rejects. */
import type { Logger } from '../logger.js'
import type { StoredEvent } from '../protocol.js'
import { FencedError, StoreError, type AppendEvent, type SessionRepository } from './types.js'
import { retryDelay, WriteHealth } from './write-health.js'

export interface EventWriterOptions {
  store: SessionRepository
  logger: Logger
  /** Events per store round trip (a batch may span sessions). */
  batchSize: number
  /** Longest wait after the first queued event before a batch goes out (0 = next tick). */
  flushMs: number
  /** hasRoom() turns false beyond this many events not yet stored. */
  maxPending: number
  retryMinMs?: number
  retryMaxMs?: number
  /** Called as each round trip to the store starts; the function it returns when it ends (metrics, a span). */
  observeBatch?: (events: number) => (error?: unknown) => void
  /**
   * An event the store refused for good: `fenced` (its epoch no longer owns the session: another instance took
   * it over, DESIGN §11) or `refused` (bad data, or another event already stored under its seq). Logged too.
   */
  onRefused?: (refusal: { sessionId: string; seq: number; reason: 'fenced' | 'refused' }) => void
}

interface EventItem { kind: 'event'; sessionId: string; event: StoredEvent; epoch?: number; done: (stored: boolean) => void; dropped?: true }
interface EndItem { kind: 'end'; sessionId: string; endedAt: string; epoch?: number; done: (ended: boolean) => void }
type Item = EventItem | EndItem

const nothing = (): void => {}
const noObserver = (): (() => void) => nothing

/** A write given up because the writer was closed while the store was failing. */
const ABANDONED = Symbol('abandoned')

/** A store refusing one event outright (not a transient failure) gets this many tries before it is dropped. */
const PERMANENT_TRIES = 3

export class EventWriter {
  private readonly opts: Required<EventWriterOptions>
  private queue: Item[] = []
  private head = 0
  private queuedEvents = 0
  private inFlightEvents = 0
  private writing = false
  private flushDue = false
  private flushTimer: NodeJS.Timeout | null = null
  private retryTimer: NodeJS.Timeout | null = null
  private wakeRetry: (() => void) | null = null
  private closed = false
  private accepted = 0
  private completed = 0
  private waiters: Array<{ target: number; resolve: () => void }> = []
  private readonly health: WriteHealth

  constructor (opts: EventWriterOptions) {
    this.opts = { retryMinMs: 50, retryMaxMs: 2_000, observeBatch: noObserver, onRefused: nothing, ...opts }
    this.health = new WriteHealth(opts.logger)
  }

  /** Events accepted but not yet stored. */
  get pending (): number { return this.queuedEvents + this.inFlightEvents }
  /** False from a failed write until a write succeeds. */
  get healthy (): boolean { return this.health.healthy }
  get lastError (): string | null { return this.health.lastError }
  /** Callers refuse new turns when false; running turns keep appending. */
  hasRoom (n = 1): boolean { return this.pending + n <= this.opts.maxPending }

  /**
   * Accepted at once; resolves true once the event is durable, false if the store refused it for good
   * (it was dropped so it cannot stall every session). Never rejects, never blocks.
   * `urgent`: someone waits for this one (an acknowledged user_message), so its batch goes out on the
   * next turn of the event loop instead of after flushMs; events queued in the same tick still ride along.
   */
  append (sessionId: string, event: StoredEvent, { urgent = false, epoch }: { urgent?: boolean; epoch?: number } = {}): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.enqueue({ kind: 'event', sessionId, event, ...(epoch === undefined ? {} : { epoch }), done: resolve })
      this.queuedEvents++
      if (this.queuedEvents >= this.opts.batchSize) this.markDue()
      else if (urgent) setImmediate(this.onUrgent)
    })
  }

  /** Ends the session after every event queued before it; resolves with store.endSession's answer. Never rejects. */
  end (sessionId: string, endedAt: string, epoch?: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.enqueue({ kind: 'end', sessionId, endedAt, ...(epoch === undefined ? {} : { epoch }), done: resolve })
      this.markDue()
    })
  }

  /** True once everything accepted so far is durable; false on timeout. */
  flush (timeoutMs?: number): Promise<boolean> {
    if (this.completed >= this.accepted) return Promise.resolve(true)
    if (this.closed) return Promise.resolve(false)
    this.markDue()
    if (this.wakeRetry !== null) this.wakeRetry() // a flush (shutdown) retries now rather than sitting out a long backoff
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const waiter = { target: this.accepted, resolve: () => { clearTimeout(timer); resolve(true) } }
      this.waiters.push(waiter)
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter)
          resolve(false)
        }, timeoutMs)
      }
    })
  }

  /** Flushes, then stops its timers. Later appends are kept in memory only (and logged). */
  async close (timeoutMs: number): Promise<boolean> {
    const ok = await this.flush(timeoutMs)
    this.closed = true
    this.clearTimers()
    if (!ok) this.opts.logger.error({ pending: this.pending }, 'event writer closed with events not stored')
    return ok
  }

  private enqueue (item: Item): void {
    this.accepted++
    this.queue.push(item)
    if (this.closed) {
      this.health.warn({ sessionId: item.sessionId }, 'event writer is closed: event kept in memory, not stored')
      return
    }
    if (this.flushTimer === null && !this.flushDue) {
      // The first queued item starts the clock; later ones ride along.
      this.flushTimer = this.opts.flushMs > 0
        ? setTimeout(this.onFlushTimer, this.opts.flushMs)
        : setImmediate(this.onFlushTimer) as unknown as NodeJS.Timeout
    }
  }

  private readonly onUrgent = (): void => { this.markDue() }

  private readonly onFlushTimer = (): void => {
    this.flushTimer = null
    this.markDue()
  }

  private markDue (): void {
    if (this.closed || this.queue.length === this.head) return
    this.flushDue = true
    if (!this.writing) {
      this.writing = true
      queueMicrotask(() => { this.run().catch((err) => this.opts.logger.error({ err }, 'event writer loop failed')) })
    }
  }

  /** The one write loop: a single store call in flight at a time keeps every session's order. */
  private async run (): Promise<void> {
    try {
      while (this.flushDue && !this.closed && this.queue.length > this.head) {
        const first = this.queue[this.head]
        if (first.kind === 'end') {
          this.take(1)
          const ended = await this.endWithRetry(first)
          if (ended === ABANDONED) return
          first.done(ended)
          this.settled(1)
          continue
        }
        const items = this.takeEvents()
        if (await this.writeWithRetry(items) === ABANDONED) return
        for (const item of items) item.done(item.dropped !== true)
        this.settled(items.length)
      }
    } finally {
      this.writing = false
      if (this.queue.length === this.head) {
        this.flushDue = false
        this.compact()
      } else if (this.flushDue) {
        this.markDue()
      }
    }
  }

  private take (n: number): void {
    this.head += n
    if (this.head > 1024 && this.head * 2 > this.queue.length) this.compact()
    if (this.queue.length === this.head) this.flushDue = false
  }

  private takeEvents (): EventItem[] {
    const items: EventItem[] = []
    for (let i = this.head; i < this.queue.length && items.length < this.opts.batchSize; i++) {
      const item = this.queue[i]
      if (item.kind !== 'event') break
      items.push(item)
    }
    this.queuedEvents -= items.length
    this.inFlightEvents += items.length
    this.take(items.length)
    return items
  }

  private compact (): void {
    this.queue = this.queue.slice(this.head)
    this.head = 0
  }

  private settled (n: number): void {
    this.completed += n
    if (this.waiters.length === 0) return
    const ready = this.waiters.filter((w) => w.target <= this.completed)
    if (ready.length === 0) return
    this.waiters = this.waiters.filter((w) => w.target > this.completed)
    for (const w of ready) w.resolve()
  }

  /** Retries until stored; a batch that did commit before failing is harmless to resend (idempotent store). */
  private async writeWithRetry (items: EventItem[]): Promise<void | typeof ABANDONED> {
    const batch: AppendEvent[] = items.map((i) => ({ sessionId: i.sessionId, event: i.event, ...(i.epoch === undefined ? {} : { epoch: i.epoch }) }))
    for (let attempt = 1; ; attempt++) {
      const observed = this.opts.observeBatch(batch.length)
      try {
        await this.opts.store.appendEvents(batch)
        observed()
        this.health.succeeded()
        this.inFlightEvents -= items.length
        return
      } catch (err) {
        observed(err)
        this.health.failed(err, this.pending)
        if (isPermanent(err)) {
          // One bad event must not stall every session: store the batch one event at a time.
          if (items.length > 1) {
            for (const item of items) {
              if (await this.writeWithRetry([item]) === ABANDONED) return ABANDONED
            }
            return
          }
          // Fenced: another instance owns the session now; this one must write nothing more, at once.
          if (attempt >= PERMANENT_TRIES || err instanceof FencedError) {
            const { sessionId, event } = items[0]
            const fenced = err instanceof FencedError
            if (fenced) this.opts.logger.warn({ sessionId, seq: event.seq, type: event.type }, 'store refused an event: this instance no longer owns the session')
            else this.opts.logger.error({ err, sessionId, seq: event.seq, type: event.type }, 'store refused an event; dropped')
            items[0].dropped = true
            this.inFlightEvents -= 1
            this.opts.onRefused({ sessionId, seq: event.seq, reason: fenced ? 'fenced' : 'refused' })
            return
          }
        }
        await this.backoff(attempt)
        if (this.closed) return ABANDONED
      }
    }
  }

  private async endWithRetry (item: EndItem): Promise<boolean | typeof ABANDONED> {
    for (let attempt = 1; ; attempt++) {
      try {
        const ended = await this.opts.store.endSession({ sessionId: item.sessionId, endedAt: item.endedAt, ...(item.epoch === undefined ? {} : { epoch: item.epoch }) })
        this.health.succeeded()
        return ended
      } catch (err) {
        this.health.failed(err, this.pending)
        if (err instanceof FencedError) return false
        if (isPermanent(err) && attempt >= PERMANENT_TRIES) {
          this.opts.logger.error({ err, sessionId: item.sessionId }, 'store refused to end a session')
          return false
        }
        await this.backoff(attempt)
        if (this.closed) return ABANDONED
      }
    }
  }

  /** Waits out the retry delay; flush() cuts it short. */
  private backoff (attempt: number): Promise<void> {
    const ms = retryDelay(attempt, this.opts.retryMinMs, this.opts.retryMaxMs)
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        if (this.retryTimer !== null) clearTimeout(this.retryTimer)
        this.retryTimer = null
        this.wakeRetry = null
        resolve()
      }
      this.wakeRetry = wake
      this.retryTimer = setTimeout(wake, ms)
    })
  }

  private clearTimers (): void {
    if (this.flushTimer !== null) {
      // Each handle to its own clear: clearImmediate on anything but an Immediate miscounts Node's pending immediates.
      if (this.opts.flushMs > 0) clearTimeout(this.flushTimer)
      else clearImmediate(this.flushTimer as unknown as NodeJS.Immediate)
      this.flushTimer = null
    }
    if (this.wakeRetry !== null) this.wakeRetry()
  }
}

/** Retryable StoreErrors (the backend is unreachable) are waited out; anything else is a refusal of the data itself. */
function isPermanent (err: unknown): boolean {
  return !(err instanceof StoreError) || !err.retryable
}
