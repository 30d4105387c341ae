/** EventWriter against the real memory store behind a fault-injecting wrapper: batching, timing, order, outages, end, bounds, flush/close. */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Logger } from '../../src/logger.js'
import type { StoredEvent } from '../../src/protocol.js'
import { EventWriter, type EventWriterOptions } from '../../src/store/event-writer.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { StoreError, type AppendEvent, type SessionRepository } from '../../src/store/types.js'
import { waitFor } from './contract-helpers.js'

type Mode = 'up' | 'down' | 'down-sync' | 'commit-then-fail'

/** Delegates to a real memory store; can be switched down, gated, or made to refuse one event for good. */
class FaultyStore implements SessionRepository {
  readonly kind = 'memory' as const
  readonly inner = createMemoryStore()
  mode: Mode = 'up'
  appendCalls = 0
  readonly calls: string[] = []
  /** Batches that were stored (flattened: the order events reached the store). */
  readonly stored: AppendEvent[] = []
  readonly batchSizes: number[] = []
  gate: Promise<void> | null = null
  poison: { sessionId: string; seq: number } | null = null

  appendEvents (batch: AppendEvent[]): Promise<void> {
    this.appendCalls++
    this.calls.push('append')
    if (this.mode === 'down-sync') throw new StoreError('store down (sync throw)', true)
    return this.appendAsync(batch)
  }

  private async appendAsync (batch: AppendEvent[]): Promise<void> {
    if (this.gate !== null) await this.gate
    if (this.mode === 'down') throw new StoreError('store down', true)
    if (this.poison !== null && batch.some((b) => b.sessionId === this.poison!.sessionId && b.event.seq === this.poison!.seq)) {
      throw new StoreError('check constraint violated', false)
    }
    await this.inner.appendEvents(batch)
    this.stored.push(...batch)
    this.batchSizes.push(batch.length)
    if (this.mode === 'commit-then-fail') {
      this.mode = 'up'
      throw new StoreError('connection reset after commit', true)
    }
  }

  async endSession (opts: { sessionId: string; endedAt: string }): Promise<boolean> {
    this.calls.push('end')
    if (this.mode !== 'up') throw new StoreError('store down', true)
    return this.inner.endSession(opts)
  }

  init = async () => this.inner.init()
  ping = async () => this.inner.ping()
  close = async () => this.inner.close()
  getSession = async (id: string) => this.inner.getSession(id)
  listSessions: SessionRepository['listSessions'] = async (o) => this.inner.listSessions(o)
  listLapsedSessions: SessionRepository['listLapsedSessions'] = async (o) => this.inner.listLapsedSessions(o)
  listEvents: SessionRepository['listEvents'] = async (id, o) => this.inner.listEvents(id, o)
  reserveSeqs: SessionRepository['reserveSeqs'] = async (o) => this.inner.reserveSeqs(o)
  acquireSession: SessionRepository['acquireSession'] = async (o) => this.inner.acquireSession(o)
  renewLeases: SessionRepository['renewLeases'] = async (o) => this.inner.renewLeases(o)
  releaseSeqs: SessionRepository['releaseSeqs'] = async (o) => this.inner.releaseSeqs(o)
  claimSummaryJobs: SessionRepository['claimSummaryJobs'] = async (o) => this.inner.claimSummaryJobs(o)
  completeSummaryJob: SessionRepository['completeSummaryJob'] = async (o) => this.inner.completeSummaryJob(o)
  failSummaryJob: SessionRepository['failSummaryJob'] = async (o) => this.inner.failSummaryJob(o)
  getProfile = async (id: string) => this.inner.getProfile(id)
  claimSession: SessionRepository['claimSession'] = async (o) => this.inner.claimSession(o)
  addUsage: SessionRepository['addUsage'] = async (o) => this.inner.addUsage(o)
  getUsage: SessionRepository['getUsage'] = async (o) => this.inner.getUsage(o)
  rememberApproval: SessionRepository['rememberApproval'] = async (o) => this.inner.rememberApproval(o)
  isApprovalRemembered: SessionRepository['isApprovalRemembered'] = async (o) => this.inner.isApprovalRemembered(o)
  summaryJobCounts = async () => this.inner.summaryJobCounts()
}

function captureLogger (): { logger: Logger; lines: Array<{ level: string; msg: string }> } {
  const lines: Array<{ level: string; msg: string }> = []
  const at = (level: string) => (obj: unknown, msg?: string) => { lines.push({ level, msg: typeof obj === 'string' ? obj : msg ?? '' }) }
  const logger = { level: 'trace', fatal: at('fatal'), error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), trace: at('trace'), silent: () => {} }
  return { logger: logger as unknown as Logger, lines }
}

const ts = (i: number) => new Date(Date.UTC(2030, 0, 1) + i).toISOString()
const conn = (seq: number): StoredEvent => ({ type: 'connected', seq, ts: ts(seq), connectionId: `c${seq}` })

/** Tracks which append promises have resolved. */
function tracked (p: Promise<unknown>): { done: boolean; p: Promise<unknown> } {
  const t = { done: false, p }
  p.then(() => { t.done = true }, () => { throw new Error('append rejected') })
  return t
}

const writers: EventWriter[] = []
function setup (opts: Partial<EventWriterOptions> = {}) {
  const store = new FaultyStore()
  const { logger, lines } = captureLogger()
  const writer = new EventWriter({ store, logger, batchSize: 10, flushMs: 5, maxPending: 1_000, retryMinMs: 2, retryMaxMs: 20, ...opts })
  writers.push(writer)
  return { store, writer, lines }
}

const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => { unhandled.push(reason) }
beforeAll(() => { process.on('unhandledRejection', onUnhandled) })
afterEach(async () => {
  vi.useRealTimers()
  await Promise.all(writers.splice(0).map((w) => w.close(1_000)))
})
afterAll(() => {
  process.off('unhandledRejection', onUnhandled)
  expect(unhandled).toEqual([])
})

describe('EventWriter', () => {
  it('writes N appends in exactly ⌈N/batchSize⌉ round trips, batches spanning sessions', async () => {
    const { store, writer } = setup({ batchSize: 10, flushMs: 20 })
    const seq = new Map<string, number>()
    const sent: Array<[string, number]> = []
    const promises = Array.from({ length: 95 }, (_, i) => {
      const sessionId = `s${i % 3}`
      const n = (seq.get(sessionId) ?? 0) + 1
      seq.set(sessionId, n)
      sent.push([sessionId, n])
      return writer.append(sessionId, conn(n))
    })
    expect(writer.pending).toBe(95)
    expect(store.appendCalls).toBe(0) // nothing happens on the caller's stack
    await Promise.all(promises)
    expect(store.appendCalls).toBe(10)
    expect(store.batchSizes).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 5])
    expect(store.stored.map((s) => [s.sessionId, s.event.seq])).toEqual(sent)
    expect(writer.pending).toBe(0)
    for (const id of ['s0', 's1', 's2']) {
      const events = await store.inner.listEvents(id, { after: 0, limit: 100 })
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: seq.get(id)! }, (_, i) => i + 1))
    }
  })

  // Timers are faked (setTimeout only: setImmediate and microtasks run as usual), so each test says when
  // flushMs has passed instead of bounding wall-clock time.
  it('stores a lone event flushMs after it was queued (and on the next tick with flushMs 0)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const { store, writer } = setup({ batchSize: 100, flushMs: 40 })
    const lone = tracked(writer.append('lone', conn(1)))
    await vi.advanceTimersByTimeAsync(39)
    expect(store.appendCalls).toBe(0)
    expect(lone.done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(await lone.p).toBe(true)
    expect(store.appendCalls).toBe(1)
    expect((await store.inner.getSession('lone'))?.lastSeq).toBe(1)

    // No timer to advance: only the next turn of the event loop can store these.
    const fast = setup({ batchSize: 100, flushMs: 0 })
    await Promise.all([fast.writer.append('tick', conn(1)), fast.writer.append('tick', conn(2))])
    expect(fast.store.batchSizes).toEqual([2])
  })

  it('sends an urgent event on the next tick, with the events queued beside it, without waiting for flushMs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const { store, writer } = setup({ batchSize: 100, flushMs: 10_000 })
    void writer.append('u', conn(1))
    const urgent = writer.append('u', conn(2), { urgent: true })
    void writer.append('u', conn(3))
    // The flush timer never fires here (fake time stands still): the urgent path alone stores them.
    expect(await urgent).toBe(true)
    expect(store.batchSizes).toEqual([3])
  })

  it('keeps the global append order across sessions and batches', async () => {
    const { store, writer } = setup({ batchSize: 7, flushMs: 1 })
    const order: Array<[string, number]> = []
    const counters: Record<string, number> = {}
    const all: Array<Promise<boolean>> = []
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 13; i++) {
        const id = ['x', 'y', 'z'][(i * 7 + round) % 3]
        counters[id] = (counters[id] ?? 0) + 1
        order.push([id, counters[id]])
        all.push(writer.append(id, conn(counters[id])))
      }
      await new Promise((resolve) => setImmediate(resolve)) // let some batches go out mid-stream
    }
    await Promise.all(all)
    expect(store.stored.map((s) => [s.sessionId, s.event.seq])).toEqual(order)
    expect(store.batchSizes.every((n) => n <= 7)).toBe(true)
  })

  it('while the store is down: accepts, grows pending, turns unhealthy, warns once; afterwards every event is stored once, in order', async () => {
    const { store, writer, lines } = setup({ batchSize: 8, flushMs: 1 })
    store.mode = 'down-sync' // a synchronous throw must be handled like a rejection
    const appended = Array.from({ length: 40 }, (_, i) => tracked(writer.append(i % 2 === 0 ? 'even' : 'odd', conn(Math.floor(i / 2) + 1))))
    await waitFor(() => store.appendCalls >= 2, 2_000, 'a retry')
    store.mode = 'down'
    await waitFor(() => store.appendCalls >= 6, 2_000, 'more retries')
    expect(writer.healthy).toBe(false)
    expect(writer.lastError).toContain('store down')
    expect(writer.pending).toBe(40)
    expect(writer.hasRoom()).toBe(true)
    expect(appended.some((a) => a.done)).toBe(false)
    expect(await store.inner.getSession('even')).toBeNull()
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1)

    store.mode = 'commit-then-fail' // the next write commits but its answer is lost: the retry must not duplicate
    await Promise.all(appended.map((a) => a.p))
    expect(writer.healthy).toBe(true)
    expect(writer.lastError).toBeNull()
    expect(writer.pending).toBe(0)
    for (const id of ['even', 'odd']) {
      const events = await store.inner.listEvents(id, { after: 0, limit: 100 })
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    }
    expect(lines.some((l) => l.level === 'info' && l.msg.includes('recovered'))).toBe(true)
  })

  it('resolves an append only once its event is durable', async () => {
    const { store, writer } = setup({ flushMs: 1 })
    let open!: () => void
    store.gate = new Promise<void>((resolve) => { open = resolve })
    const a = tracked(writer.append('gated', conn(1)))
    await waitFor(() => store.appendCalls === 1, 1_000, 'the write to start')
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(a.done).toBe(false)
    expect(writer.pending).toBe(1)
    expect(await store.inner.getSession('gated')).toBeNull()
    store.gate = null
    open()
    await a.p
    expect((await store.inner.getSession('gated'))?.lastSeq).toBe(1)
  })

  it('runs end after the events queued before it and returns the store answer, also across an outage', async () => {
    const { store, writer } = setup({ batchSize: 3, flushMs: 1 })
    for (let i = 1; i <= 5; i++) void writer.append('e1', conn(i))
    expect(await writer.end('e1', ts(100))).toBe(true)
    expect(store.calls).toEqual(['append', 'append', 'end'])
    expect(await store.inner.getSession('e1')).toMatchObject({ status: 'ended', lastSeq: 5, summaryStatus: 'pending' })
    expect(await writer.end('e1', ts(101))).toBe(false)
    expect(await writer.end('never-seen', ts(1))).toBe(false)

    store.mode = 'down'
    const events = [1, 2, 3].map((i) => tracked(writer.append('e2', conn(i))))
    const ended = writer.end('e2', ts(50))
    await waitFor(() => !writer.healthy, 1_000, 'the outage to be seen')
    store.mode = 'up'
    expect(await ended).toBe(true)
    expect(events.every((e) => e.done)).toBe(true)
    expect(await store.inner.getSession('e2')).toMatchObject({ status: 'ended', lastSeq: 3 })
  })

  it('bounds hasRoom by maxPending but never drops an accepted event', async () => {
    const { store, writer } = setup({ maxPending: 10, flushMs: 1 })
    store.mode = 'down'
    const all = Array.from({ length: 10 }, (_, i) => writer.append('full', conn(i + 1)))
    expect(writer.hasRoom()).toBe(false)
    expect(writer.hasRoom(0)).toBe(true)
    all.push(writer.append('full', conn(11))) // a running turn keeps appending
    expect(writer.pending).toBe(11)
    await waitFor(() => store.appendCalls >= 2, 1_000, 'retries')
    store.mode = 'up'
    await Promise.all(all)
    expect(writer.hasRoom(10)).toBe(true)
    expect((await store.inner.listEvents('full', { after: 0, limit: 100 })).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
  })

  it('drops, with an error log, only an event the store refuses for good; the rest go through', async () => {
    const { store, writer, lines } = setup({ batchSize: 5, flushMs: 1 })
    store.poison = { sessionId: 'p', seq: 3 }
    const stored = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => writer.append('p', conn(i))))
    expect(stored).toEqual([true, true, false, true, true, true])
    expect((await store.inner.listEvents('p', { after: 0, limit: 10 })).map((e) => e.seq)).toEqual([1, 2, 4, 5, 6])
    expect(lines.filter((l) => l.level === 'error' && l.msg.includes('dropped'))).toHaveLength(1)
    expect(writer.pending).toBe(0)
    expect(writer.healthy).toBe(true)
  })

  it('flush forces a write without waiting for flushMs, times out while the store is down, and cuts a long backoff short', async () => {
    const { store, writer } = setup({ batchSize: 100, flushMs: 10_000, retryMinMs: 60_000, retryMaxMs: 60_000 })
    expect(await writer.flush(10)).toBe(true) // nothing pending
    void writer.append('f', conn(1))
    void writer.append('f', conn(2))
    const t0 = performance.now()
    expect(await writer.flush()).toBe(true)
    expect(performance.now() - t0).toBeLessThan(1_000)
    expect((await store.inner.getSession('f'))?.lastSeq).toBe(2)

    store.mode = 'down'
    void writer.append('f', conn(3))
    expect(await writer.flush(50)).toBe(false)
    expect(writer.pending).toBe(1)
    store.mode = 'up'
    const t1 = performance.now()
    expect(await writer.flush(5_000)).toBe(true) // does not sit out the 60 s backoff
    expect(performance.now() - t1).toBeLessThan(1_000)
    expect((await store.inner.getSession('f'))?.lastSeq).toBe(3)
  })

  it('close flushes, then keeps later appends in memory only and says so', async () => {
    const { store, writer, lines } = setup({ flushMs: 10_000 })
    const before = writer.append('c', conn(1))
    expect(await writer.close(2_000)).toBe(true)
    await before
    const calls = store.appendCalls
    const late = tracked(writer.append('c', conn(2)))
    expect(writer.pending).toBe(1)
    expect(lines.some((l) => l.level === 'warn' && l.msg.includes('closed'))).toBe(true)
    expect(await writer.flush(20)).toBe(false)
    expect(store.appendCalls).toBe(calls)
    expect(late.done).toBe(false)
    expect((await store.inner.getSession('c'))?.lastSeq).toBe(1)
  })

  it('close gives up after its timeout when the store stays down', async () => {
    const { store, writer, lines } = setup({ flushMs: 1 })
    store.mode = 'down'
    void writer.append('down', conn(1))
    const t0 = performance.now()
    expect(await writer.close(100)).toBe(false)
    expect(performance.now() - t0).toBeLessThan(1_000)
    expect(lines.some((l) => l.level === 'error')).toBe(true)
    const calls = store.appendCalls
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(store.appendCalls).toBeLessThanOrEqual(calls + 1) // at most the attempt already in flight
  })
})
