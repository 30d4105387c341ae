/** The summary queue's counts (rtb_summary_jobs on /metrics) on every store, each on its own fresh data so the counts are exact. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SessionRepository } from '../../src/store/types.js'
import { STORE_VARIANTS } from '../support/stores.js'
import { ev, TimeWindow } from './contract-helpers.js'

describe.each(STORE_VARIANTS)('summaryJobCounts on $name', ({ start }) => {
  let store: SessionRepository
  let stop: () => Promise<void>
  beforeAll(async () => { ({ store, stop } = await start()) })
  afterAll(async () => { await stop?.() })

  it('counts pending, running (a live lease) and failed jobs; ready ones and active sessions not at all', async () => {
    expect(await store.summaryJobCounts()).toEqual({ pending: 0, running: 0, failed: 0 })
    const t = new TimeWindow()
    const ids = ['c-1', 'c-2', 'c-3', 'c-4', 'c-active']
    await store.appendEvents(ids.map((sessionId, i) => ({ sessionId, event: ev.user(1, t.at(i), 't', `q${i}`) })))
    for (const sessionId of ids.slice(0, 4)) expect(await store.endSession({ sessionId, endedAt: t.at(60_000) })).toBe(true)
    expect(await store.summaryJobCounts()).toEqual({ pending: 4, running: 0, failed: 0 })

    const claimed = await store.claimSummaryJobs({ workerId: 'w', limit: 3, leaseMs: 60_000 })
    expect(claimed).toHaveLength(3)
    expect(await store.summaryJobCounts()).toEqual({ pending: 1, running: 3, failed: 0 })

    const [done, failing, retried] = claimed
    expect(await store.completeSummaryJob({ job: done, workerId: 'w', summary: 's' })).toBe(true)
    expect(await store.failSummaryJob({ job: failing, workerId: 'w', error: 'e', retryInMs: 0, maxAttempts: 1 })).toBe('failed')
    expect(await store.failSummaryJob({ job: retried, workerId: 'w', error: 'e', retryInMs: 60_000, maxAttempts: 3 })).toBe('retry')
    expect(await store.summaryJobCounts()).toEqual({ pending: 2, running: 0, failed: 1 })
  })
})
