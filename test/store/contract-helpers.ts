/** Helpers for the store contract suite: random ids and time windows, event builders, and a claim loop that shares a database politely. */
import { randomUUID } from 'node:crypto'
import type { FinishReason, StoredEvent, Usage } from '../../src/protocol.js'
import type { SessionRepository, SummaryJob } from '../../src/store/types.js'

type Ev<T extends StoredEvent['type']> = Extract<StoredEvent, { type: T }>

export const ev = {
  connected: (seq: number, ts: string, connectionId = 'conn-1'): Ev<'connected'> => ({ type: 'connected', seq, ts, connectionId }),
  user: (seq: number, ts: string, turnId: string, content: string, clientId?: string): Ev<'user_message'> =>
    clientId === undefined ? { type: 'user_message', seq, ts, turnId, content } : { type: 'user_message', seq, ts, turnId, content, clientId },
  assistant: (seq: number, ts: string, turnId: string, content: string, finishReason: FinishReason = 'stop', usage?: Usage): Ev<'assistant_message'> =>
    usage === undefined
      ? { type: 'assistant_message', seq, ts, turnId, content, finishReason }
      : { type: 'assistant_message', seq, ts, turnId, content, finishReason, usage }
}

/** Random session ids, remembered so the suite can finish the jobs it created. */
export class Ids {
  readonly all: string[] = []
  next (prefix = ''): string {
    const id = `ct-${prefix}${randomUUID()}`
    this.all.push(id)
    return id
  }

  /** Best effort: completes every job of ours still pending, so no claimable job outlives the suite. */
  async settleJobs (store: SessionRepository): Promise<void> {
    const pending: string[] = []
    for (const id of this.all) {
      if ((await store.getSession(id))?.summaryStatus === 'pending') pending.push(id)
    }
    if (pending.length === 0) return
    const jobs = await claimMine(store, { workerId: 'contract-cleanup', ids: pending, leaseMs: 5_000, timeoutMs: 2_000 }).catch(() => [])
    for (const job of jobs) await store.completeSummaryJob({ job, workerId: 'contract-cleanup', summary: 'contract test cleanup' })
  }
}

/**
 * Timestamps inside a random ~100 s window between 2000 and 2020, so `listSessions({ before })`
 * over the window sees only this test's sessions even in a shared, non-empty database.
 */
export class TimeWindow {
  readonly base = Date.UTC(2000, 0, 1) + Math.floor(Math.random() * 20 * 365 * 86_400) * 1_000
  at (offsetMs: number): string {
    return new Date(this.base + offsetMs).toISOString()
  }
}

export interface ClaimMineOptions {
  workerId: string
  /** Our session ids: jobs of other sessions are handed back. */
  ids: string[]
  leaseMs: number
  limit?: number
  /** How many of ours to wait for (default all of ids); 'some' = at least one; 0 = one round, expecting none. */
  want?: number | 'some'
  timeoutMs?: number
}

/**
 * Claims until `want` of our jobs are held. Other suites may share the database, so a job that is
 * not ours is handed back at once (failed with a huge maxAttempts and a short retry delay: it stays
 * pending, and its owner's claim loop gets it a moment later).
 */
export async function claimMine (store: SessionRepository, opts: ClaimMineOptions): Promise<SummaryJob[]> {
  const mine = new Set(opts.ids)
  const want = opts.want ?? opts.ids.length
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000)
  const got: SummaryJob[] = []
  for (let round = 0; ; round++) {
    const jobs = await store.claimSummaryJobs({ workerId: opts.workerId, limit: opts.limit ?? 50, leaseMs: opts.leaseMs })
    for (const job of jobs) {
      if (mine.has(job.sessionId)) got.push(job)
      else await store.failSummaryJob({ job, workerId: opts.workerId, error: 'handed back by the store contract suite', retryInMs: 1_000, maxAttempts: 1_000_000 })
    }
    if (want === 0) return got
    if (want === 'some' ? got.length > 0 : got.length >= want) return got
    if (Date.now() > deadline) {
      throw new Error(`claimMine(${opts.workerId}): ${got.length} of ${String(want)} jobs claimed after ${round + 1} rounds`)
    }
    await new Promise((resolve) => setTimeout(resolve, jobs.length > 0 ? 0 : 20))
  }
}

/** Polls `cond` every few ms until true; throws after timeoutMs. */
export async function waitFor (cond: () => boolean | Promise<boolean>, timeoutMs: number, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
