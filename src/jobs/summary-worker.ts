/** The summary worker: claims due summary jobs under a lease, summarizes the session's log, retries with backoff. */
import { randomUUID } from 'node:crypto'
import type { Logger } from '../logger.js'
import type { StoredEvent } from '../protocol.js'
import type { SessionRepository, SummaryJob } from '../store/types.js'

/**
 * `events` reads the session's log from the store page by page as it is iterated, so a long log is never held
 * whole; it stops reading (throws the abort reason) once `signal` aborts, even for a summarizer that ignores it.
 */
export type Summarize = (opts: { sessionId: string; events: AsyncIterable<StoredEvent>; signal: AbortSignal }) => Promise<string>

export interface SummaryWorkerOptions {
  store: SessionRepository
  summarize: Summarize
  logger: Logger
  pollMs: number
  /** How long a claim is ours; a summary running longer is aborted (another worker may own the job by then). */
  leaseMs: number
  maxAttempts: number
  workerId?: string
  /** Jobs run at the same time (and claimed per poll). */
  batch?: number
  /** Retry delay after the n-th failed attempt: retryBaseMs × 2^(n−1). */
  retryBaseMs?: number
}

export interface SummaryWorker {
  readonly workerId: string
  /** Jobs this worker is running now (claimed, not settled). */
  readonly running: number
  /** Starts polling every pollMs (the timer does not keep the process alive). */
  start (): void
  /** Polls now: called right after a session ends so its summary starts promptly. */
  kick (): void
  /** Claims and runs one round of jobs; resolves with how many it ran. */
  runOnce (): Promise<number>
  /** Stops polling, aborts running summaries and waits for them to settle. Their leases expire and the jobs are retried. */
  stop (): Promise<void>
}

const PAGE = 500
/** How long stop() waits for an aborted summarizer to settle (one that ignores its signal is left behind). */
const STOP_GRACE_MS = 2_000

export function createSummaryWorker (opts: SummaryWorkerOptions): SummaryWorker {
  const { store, summarize, pollMs, leaseMs, maxAttempts } = opts
  const workerId = opts.workerId ?? `worker-${randomUUID().slice(0, 8)}`
  const limit = Math.max(1, opts.batch ?? 4)
  const retryBaseMs = opts.retryBaseMs ?? 1_000
  const logger = opts.logger
  const running = new Map<string, { controller: AbortController; done: Promise<void> }>()
  let timer: NodeJS.Timeout | null = null
  let started = false
  let stopped = false
  let polling: Promise<unknown> | null = null
  let pollAgain = false

  /** Claims what fits in the free slots and starts those jobs; resolves once they are claimed (not finished). */
  async function claimRound (): Promise<Array<Promise<void>>> {
    const free = limit - running.size
    if (stopped || free <= 0) return []
    let jobs: SummaryJob[]
    try {
      jobs = await store.claimSummaryJobs({ workerId, limit: free, leaseMs })
    } catch (err) {
      logger.warn({ err, workerId }, 'summary worker could not claim jobs; will retry next poll')
      return []
    }
    // Stopped while claiming: leave them; their leases expire and a live worker takes them.
    if (stopped) return []
    return jobs.map((job) => {
      const controller = new AbortController()
      const key = `${job.sessionId}#${job.version}`
      const done = runJob(job, controller.signal).finally(() => {
        running.delete(key)
        if (started && !stopped) kick() // a slot is free: look for more work now
      })
      running.set(key, { controller, done })
      return done
    })
  }

  /** The session's log: each iteration reads it afresh from the store, page by page, and stops once `signal` aborts. */
  const logOf = (sessionId: string, signal: AbortSignal): AsyncIterable<StoredEvent> => ({
    async * [Symbol.asyncIterator] () {
      for (let after = 0; ;) {
        signal.throwIfAborted()
        const page = await store.listEvents(sessionId, { after, limit: PAGE })
        yield * page
        if (page.length < PAGE) return
        after = page[page.length - 1].seq
      }
    }
  })

  async function runJob (job: SummaryJob, stopSignal: AbortSignal): Promise<void> {
    const ctx = { sessionId: job.sessionId, version: job.version, attempt: job.attempts, workerId }
    const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(leaseMs)])
    const t0 = Date.now()
    let summary: string
    let work: Promise<string> | undefined
    try {
      work = summarize({ sessionId: job.sessionId, events: logOf(job.sessionId, signal), signal })
      summary = await untilAborted(work, signal)
    } catch (err) {
      // Stopping is not a failure of the job: the lease runs out and a live worker retries it.
      if (stopSignal.aborted) return settleWithin(work, STOP_GRACE_MS)
      const error = signal.aborted ? `summary timed out after ${leaseMs} ms` : errorText(err)
      try {
        const outcome = await store.failSummaryJob({ job, workerId, error, retryInMs: retryBaseMs * 2 ** (job.attempts - 1), maxAttempts })
        logger[outcome === 'failed' ? 'error' : 'warn']({ ...ctx, err, outcome }, 'summary attempt failed')
      } catch (storeErr) {
        logger.warn({ ...ctx, err: storeErr }, 'could not record the failed summary attempt; the lease will expire')
      }
      return
    }
    try {
      const ok = await store.completeSummaryJob({ job, workerId, summary })
      if (ok) logger.info({ ...ctx, ms: Date.now() - t0, chars: summary.length }, 'summary written')
      else logger.info(ctx, 'summary discarded: the job moved on (lease lost or session ended again)')
    } catch (err) {
      logger.warn({ ...ctx, err }, 'could not store the summary; the lease will expire and the job is retried')
    }
  }

  function poll (): void {
    if (stopped) return
    if (polling !== null) {
      pollAgain = true
      return
    }
    if (timer !== null) clearTimeout(timer)
    timer = null
    polling = claimRound().finally(() => {
      polling = null
      if (stopped) return
      if (pollAgain) {
        pollAgain = false
        poll()
      } else if (started) {
        timer = setTimeout(poll, pollMs)
        timer.unref()
      }
    })
  }

  function kick (): void {
    if (started && !stopped) poll()
  }

  return {
    workerId,
    get running () { return running.size },
    start () {
      if (started || stopped) return
      started = true
      poll()
    },
    kick,
    async runOnce () {
      const jobs = await claimRound()
      await Promise.all(jobs)
      return jobs.length
    },
    async stop () {
      stopped = true
      if (timer !== null) clearTimeout(timer)
      timer = null
      await polling
      for (const { controller } of running.values()) controller.abort(new Error('summary worker stopping'))
      await Promise.allSettled([...running.values()].map((r) => r.done))
    }
  }
}

/** Settles when the signal aborts even if the summarizer ignores it. */
function untilAborted<T> (work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

async function settleWithin (work: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (work === undefined) return
  let timer: NodeJS.Timeout | undefined
  await Promise.race([work.catch(() => {}), new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}

function errorText (err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text.length > 1_000 ? `${text.slice(0, 1_000)}…` : text
}
