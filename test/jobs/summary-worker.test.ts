/** SummaryWorker against the memory store: prompt pickup, retries, failure, exactly-once under a race, lease takeover, stop. */
import { afterEach, describe, expect, it } from 'vitest'
import { createSummaryWorker, type Summarize, type SummaryWorker, type SummaryWorkerOptions } from '../../src/jobs/summary-worker.js'
import type { Logger } from '../../src/logger.js'
import type { StoredEvent } from '../../src/protocol.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { SessionRepository } from '../../src/store/types.js'
import { waitFor } from '../store/contract-helpers.js'

function captureLogger (): { logger: Logger; lines: Array<{ level: string; msg: string }> } {
  const lines: Array<{ level: string; msg: string }> = []
  const at = (level: string) => (obj: unknown, msg?: string) => { lines.push({ level, msg: typeof obj === 'string' ? obj : msg ?? '' }) }
  const logger = { level: 'trace', fatal: at('fatal'), error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), trace: at('trace'), silent: () => {} }
  return { logger: logger as unknown as Logger, lines }
}

const ts = (ms: number) => new Date(Date.UTC(2030, 0, 1) + ms).toISOString()

async function endedSession (store: SessionRepository, id: string, events = 2): Promise<void> {
  const batch = Array.from({ length: events }, (_, i): { sessionId: string; event: StoredEvent } => ({
    sessionId: id,
    event: i === 0
      ? { type: 'user_message', seq: 1, ts: ts(0), turnId: 't1', content: `question of ${id}` }
      : { type: 'connected', seq: i + 1, ts: ts(i), connectionId: 'c' }
  }))
  await store.appendEvents(batch)
  expect(await store.endSession({ sessionId: id, endedAt: ts(60_000) })).toBe(true)
}

const collect = async (events: AsyncIterable<StoredEvent>): Promise<StoredEvent[]> => {
  const out: StoredEvent[] = []
  for await (const e of events) out.push(e)
  return out
}

/** A summarizer that records its calls per session. */
function recorder (impl: (opts: Parameters<Summarize>[0], call: number) => Promise<string>) {
  const calls = new Map<string, number>()
  const summarize: Summarize = async (opts) => {
    const n = (calls.get(opts.sessionId) ?? 0) + 1
    calls.set(opts.sessionId, n)
    return impl(opts, n)
  }
  return { summarize, calls }
}

const workers: SummaryWorker[] = []
function worker (opts: Partial<SummaryWorkerOptions> & Pick<SummaryWorkerOptions, 'store' | 'summarize'>): SummaryWorker {
  const w = createSummaryWorker({ logger: captureLogger().logger, pollMs: 10, leaseMs: 5_000, maxAttempts: 3, retryBaseMs: 5, ...opts })
  workers.push(w)
  return w
}
afterEach(async () => { await Promise.all(workers.splice(0).map((w) => w.stop())) })

const status = async (store: SessionRepository, id: string) => (await store.getSession(id))?.summaryStatus

describe('SummaryWorker', () => {
  it('summarizes an ended session promptly after kick(), from all its events (paged)', async () => {
    const store = createMemoryStore()
    const seen: StoredEvent[][] = []
    const { summarize, calls } = recorder(async (opts) => {
      const events = await collect(opts.events)
      seen.push(events)
      return `summary: ${events.length} events, first "${events[0].type === 'user_message' ? events[0].content : '?'}"`
    })
    const w = worker({ store, summarize, pollMs: 60_000 })
    w.start()
    await endedSession(store, 'long', 1_201)
    const t0 = Date.now()
    w.kick()
    // kick() starts it now: far sooner than the 60 s poll, with room for a loaded machine.
    await waitFor(async () => (await status(store, 'long')) === 'ready', 10_000, 'the summary')
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(await store.getSession('long')).toMatchObject({ summary: 'summary: 1201 events, first "question of long"', summaryError: null })
    expect(seen[0].map((e) => e.seq)).toEqual(Array.from({ length: 1_201 }, (_, i) => i + 1))
    expect(calls.get('long')).toBe(1)
  })

  it('reads the log page by page as the summarizer iterates it, and a failed read fails only that attempt', async () => {
    const store = createMemoryStore()
    await endedSession(store, 'paged', 1_201)
    const reads: number[] = []
    let failNext = true
    const counting: SessionRepository = Object.assign(Object.create(store) as SessionRepository, {
      listEvents: async (id: string, page: { after: number; limit: number }) => {
        reads.push(page.after)
        if (failNext && page.after > 0) { failNext = false; throw new Error('store read failed mid-log') }
        return await store.listEvents(id, page)
      }
    })
    const firsts: number[] = []
    const { summarize, calls } = recorder(async (opts, call) => {
      if (call === 1) return `${(await collect(opts.events)).length} events` // reads on: its second page fails
      for await (const e of opts.events) { firsts.push(e.seq); break } // stops after one event: no further page read
      return 'first event only'
    })
    worker({ store: counting, summarize }).start()
    await waitFor(async () => (await status(store, 'paged')) === 'ready', 2_000, 'the summary')
    expect(calls.get('paged')).toBe(2)
    expect(reads).toEqual([0, 500, 0])
    expect(firsts).toEqual([1])
    expect(await store.getSession('paged')).toMatchObject({ summary: 'first event only', summaryStatus: 'ready' })
  })

  it('each iteration of the log reads it afresh; once the lease is over it reads nothing, even for a summarizer that ignores its signal', async () => {
    const store = createMemoryStore()
    await endedSession(store, 'late', 1_200)
    const reads: number[] = []
    const counting: SessionRepository = Object.assign(Object.create(store) as SessionRepository, {
      listEvents: async (id: string, page: { after: number; limit: number }) => {
        reads.push(page.after)
        return await store.listEvents(id, page)
      }
    })
    let openGate = () => {}
    const gate = new Promise<void>((resolve) => { openGate = resolve })
    const counts: number[] = []
    let late: Promise<unknown> = Promise.resolve()
    const { summarize } = recorder(async ({ events }, call) => {
      // A poll may claim the job again once its lease is over (another attempt): only the first one reads.
      if (call > 1) return await new Promise<string>(() => {})
      counts.push((await collect(events)).length, (await collect(events)).length)
      // Ignores its signal: goes on reading after the lease is over, then never answers.
      late = gate.then(async () => await collect(events)).then(() => 'read', (err: unknown) => err)
      return await new Promise<string>(() => {})
    })
    worker({ store: counting, summarize, leaseMs: 150, maxAttempts: 1, pollMs: 60_000 }).start()
    await waitFor(async () => (await status(store, 'late')) === 'failed', 3_000, 'the timed-out attempt')
    expect(counts).toEqual([1_200, 1_200])
    expect(reads).toEqual([0, 500, 1000, 0, 500, 1000])
    openGate()
    const outcome = await late
    expect(outcome).toBeInstanceOf(DOMException)
    expect((outcome as DOMException).name).toBe('TimeoutError')
    expect(reads).toHaveLength(6)
    expect((await store.getSession('late'))?.summaryError).toMatch(/timed out after 150 ms/)
  })

  it('retries a failing summary with backoff and succeeds on the third attempt', async () => {
    const store = createMemoryStore()
    const { summarize, calls } = recorder(async (_opts, call) => {
      if (call < 3) throw new Error(`flaky ${call}`)
      return 'third time lucky'
    })
    worker({ store, summarize, maxAttempts: 5 }).start()
    await endedSession(store, 'flaky')
    await waitFor(async () => (await status(store, 'flaky')) === 'ready', 3_000, 'the summary')
    expect(calls.get('flaky')).toBe(3)
    expect(await store.getSession('flaky')).toMatchObject({ summary: 'third time lucky', summaryError: null })
  })

  it('marks the job failed with the reason after maxAttempts', async () => {
    const store = createMemoryStore()
    const { logger, lines } = captureLogger()
    const { summarize, calls } = recorder(async () => { throw new Error('model exploded') })
    worker({ store, summarize, logger, maxAttempts: 3 }).start()
    await endedSession(store, 'doomed')
    await waitFor(async () => (await status(store, 'doomed')) === 'failed', 3_000, 'the failure')
    expect(await store.getSession('doomed')).toMatchObject({ summary: null, summaryError: 'model exploded' })
    expect(calls.get('doomed')).toBe(3)
    expect(lines.filter((l) => l.level === 'error')).toHaveLength(1)
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(2)
  })

  it('two workers racing over 200 ended sessions write each summary exactly once', async () => {
    const store = createMemoryStore()
    const ids = Array.from({ length: 200 }, (_, i) => `race-${i}`)
    for (const id of ids) await endedSession(store, id)
    const { summarize, calls } = recorder(async ({ sessionId }) => {
      await new Promise((resolve) => setImmediate(resolve))
      return `summary of ${sessionId}`
    })
    const a = worker({ store, summarize, workerId: 'a', pollMs: 5 })
    const b = worker({ store, summarize, workerId: 'b', pollMs: 5 })
    a.start()
    b.start()
    await waitFor(async () => (await store.listSessions({ limit: 500, status: 'ended' })).every((s) => s.summaryStatus === 'ready'), 20_000, 'all summaries')
    for (const id of ids) {
      expect(calls.get(id)).toBe(1)
      expect((await store.getSession(id))?.summary).toBe(`summary of ${id}`)
    }
    expect(calls.size).toBe(200)
  })

  it('a worker that dies mid-job loses its lease; another worker completes the job', async () => {
    const store = createMemoryStore()
    let dead = false
    // The dying worker's view of the store: once dead, nothing it sends ever arrives.
    const deadable = new Proxy(store, {
      get (target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => dead ? new Promise(() => {}) : (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    })
    let started!: () => void
    const inFlight = new Promise<void>((resolve) => { started = resolve })
    const doomed = worker({ store: deadable, summarize: async () => { started(); return new Promise<string>(() => {}) }, workerId: 'doomed', leaseMs: 300, pollMs: 60_000 })
    doomed.start()
    await endedSession(store, 'orphan')
    doomed.kick()
    await inFlight
    dead = true
    workers.splice(workers.indexOf(doomed), 1) // abandoned, never stopped

    const { summarize, calls } = recorder(async () => 'rescued')
    const t0 = Date.now()
    worker({ store, summarize, workerId: 'rescuer', leaseMs: 300, pollMs: 20 }).start()
    await waitFor(async () => (await status(store, 'orphan')) === 'ready', 5_000, 'the rescue')
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200) // not before the lease ran out
    expect(await store.getSession('orphan')).toMatchObject({ summary: 'rescued' })
    expect(calls.get('orphan')).toBe(1)
  })

  it('aborts a summary that outlives its lease and counts it as a failed attempt', async () => {
    const store = createMemoryStore()
    const w = worker({
      store, leaseMs: 150, maxAttempts: 1,
      summarize: ({ signal }) => new Promise<string>((_resolve, reject) => { signal.addEventListener('abort', () => reject(new Error('aborted'))) })
    })
    w.start()
    await endedSession(store, 'slow')
    await waitFor(async () => (await status(store, 'slow')) === 'failed', 3_000, 'the timeout')
    expect((await store.getSession('slow'))?.summaryError).toMatch(/timed out after 150 ms/)
  })

  it('stop() aborts running summaries, waits for them, and leaves the job for a later worker', async () => {
    const store = createMemoryStore()
    let signal: AbortSignal | undefined
    let settled = false
    const w = worker({
      store,
      summarize: (opts) => new Promise<string>((_resolve, reject) => {
        signal = opts.signal
        opts.signal.addEventListener('abort', () => { setTimeout(() => { settled = true; reject(new Error('aborted')) }, 20) })
      })
    })
    w.start()
    await endedSession(store, 'stopping')
    w.kick()
    await waitFor(() => signal !== undefined, 1_000, 'the summary to start')
    await w.stop()
    expect(signal!.aborted).toBe(true)
    expect(settled).toBe(true)
    expect(await store.getSession('stopping')).toMatchObject({ summaryStatus: 'pending', summaryError: null })
    expect(await w.runOnce()).toBe(0)
  })

  it('survives a failing store while polling and picks the job up once it answers', async () => {
    const store = createMemoryStore()
    const { logger, lines } = captureLogger()
    let failures = 3
    const flaky: SessionRepository = Object.assign(Object.create(store) as SessionRepository, {
      claimSummaryJobs: async (o: Parameters<SessionRepository['claimSummaryJobs']>[0]) => {
        if (failures-- > 0) throw new Error('connection refused')
        return store.claimSummaryJobs(o)
      }
    })
    await endedSession(store, 'patient')
    worker({ store: flaky, logger, summarize: async () => 'eventually' }).start()
    await waitFor(async () => (await status(store, 'patient')) === 'ready', 3_000, 'the summary')
    expect(lines.filter((l) => l.level === 'warn' && l.msg.includes('could not claim'))).toHaveLength(3)
  })

  it('runOnce claims, runs and counts one round', async () => {
    const store = createMemoryStore()
    for (const id of ['r1', 'r2', 'r3']) await endedSession(store, id)
    const w = worker({ store, summarize: async ({ sessionId }) => `s-${sessionId}`, batch: 2 })
    expect(await w.runOnce()).toBe(2)
    expect(await w.runOnce()).toBe(1)
    expect(await w.runOnce()).toBe(0)
    expect((await store.getSession('r3'))?.summary).toBe('s-r3')
  })
})
