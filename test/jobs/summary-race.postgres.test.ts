/** Two summary workers racing on Postgres: every ended session summarised exactly once; an abandoned job completes after its lease. */
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSummaryWorker, type Summarize } from '../../src/jobs/summary-worker.js'
import { createPostgresStore } from '../../src/store/postgres.js'
import type { SessionRepository } from '../../src/store/types.js'
import { applySchema, createScratchDatabase, stopTestDatabase } from '../support/postgres.js'
import { ev, Ids, TimeWindow } from '../store/contract-helpers.js'

const logger = pino({ level: 'silent' })
let scratch: { url: string; drop: () => Promise<void> }
const stores: SessionRepository[] = []

/** Each worker gets its own pool, as two server processes would. Counts the completions the database accepted. */
function openStore (completed: Map<string, number>): SessionRepository {
  const store = createPostgresStore({ connectionString: scratch.url, poolMax: 3, logger })
  stores.push(store)
  return {
    ...store,
    async completeSummaryJob (opts) {
      const ok = await store.completeSummaryJob(opts)
      if (ok) completed.set(opts.job.sessionId, (completed.get(opts.job.sessionId) ?? 0) + 1)
      return ok
    }
  }
}

async function endedSessions (store: SessionRepository, ids: Ids, n: number): Promise<string[]> {
  const t = new TimeWindow()
  const list = Array.from({ length: n }, () => ids.next('race-'))
  await store.appendEvents(list.flatMap((sessionId, i) => [
    { sessionId, event: ev.user(1, t.at(i), 'turn', `question ${i}`) },
    { sessionId, event: ev.assistant(2, t.at(i + 1), 'turn', `answer ${i}`) }
  ]))
  for (const sessionId of list) expect(await store.endSession({ sessionId, endedAt: t.at(n + 10_000) })).toBe(true)
  return list
}

async function until (check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check());) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

beforeAll(async () => {
  // A database of its own: these workers claim every due job, so no other suite's jobs may be in reach.
  scratch = await createScratchDatabase()
  await applySchema(scratch.url)
})
afterAll(async () => {
  for (const store of stores) await store.close()
  await scratch?.drop()
  await stopTestDatabase()
})

describe('summary workers racing on postgres', () => {
  it('200 ended sessions: each summarised once, each summary written exactly once, by one of the two workers', async () => {
    const completed = new Map<string, number>()
    const calls = new Map<string, string[]>()
    const summarize = (workerId: string): Summarize => async ({ sessionId, events }) => {
      calls.set(sessionId, [...(calls.get(sessionId) ?? []), workerId])
      let count = 0
      for await (const _ of events) count++
      return `summary of ${sessionId} (${count} events) by ${workerId}`
    }
    const seed = openStore(completed)
    const ids = new Ids()
    const sessions = await endedSessions(seed, ids, 200)

    const workers = ['worker-a', 'worker-b'].map((workerId) => createSummaryWorker({
      store: openStore(completed), summarize: summarize(workerId), logger, workerId,
      pollMs: 10, leaseMs: 30_000, maxAttempts: 3, batch: 8
    }))
    for (const w of workers) w.start()
    try {
      await until(async () => completed.size === sessions.length, 30_000)
    } finally {
      await Promise.all(workers.map((w) => w.stop()))
    }

    for (const id of sessions) {
      expect(calls.get(id), id).toHaveLength(1)
      expect(completed.get(id), id).toBe(1)
      const s = await seed.getSession(id)
      expect(s).toMatchObject({ summaryStatus: 'ready', summaryError: null, status: 'ended', version: 1 })
      expect(s!.summary).toBe(`summary of ${id} (2 events) by ${calls.get(id)![0]}`)
    }
    const byWorker = [...calls.values()].flat()
    expect(byWorker).toHaveLength(200)
    expect(new Set(byWorker)).toEqual(new Set(['worker-a', 'worker-b'])) // a real race: both took jobs
  })

  it('a worker killed mid-job leaves its lease; the job completes after the lease expires, once', async () => {
    const completed = new Map<string, number>()
    const seed = openStore(completed)
    const ids = new Ids()
    const [victim] = await endedSessions(seed, ids, 1)

    let started!: () => void
    const jobStarted = new Promise<void>((resolve) => { started = resolve })
    const doomed = createSummaryWorker({
      store: openStore(completed), logger, workerId: 'doomed', pollMs: 10, leaseMs: 800, maxAttempts: 3,
      // Hangs until aborted, like a process that dies in the middle of the model call.
      summarize: async ({ signal }) => { started(); return await new Promise<string>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))) }
    })
    doomed.start()
    await jobStarted
    const claimedAt = Date.now()
    await doomed.stop() // abandoned: no complete, no fail; the lease stays until it expires
    expect(await seed.getSession(victim)).toMatchObject({ summaryStatus: 'pending' })

    const rescuer = createSummaryWorker({
      store: openStore(completed), logger, workerId: 'rescuer', pollMs: 20, leaseMs: 30_000, maxAttempts: 3,
      summarize: async ({ sessionId }) => `rescued ${sessionId}`
    })
    rescuer.start()
    try {
      await until(async () => (await seed.getSession(victim))?.summaryStatus === 'ready', 15_000)
    } finally {
      await rescuer.stop()
    }
    expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(700) // not before the 800 ms lease ran out
    expect(await seed.getSession(victim)).toMatchObject({ summary: `rescued ${victim}`, summaryStatus: 'ready' })
    expect(completed.get(victim)).toBe(1)
  })
})
