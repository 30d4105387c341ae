/** The summary-job part of the store contract: claim exclusivity, leases, completion and failure rules. */
import { beforeAll, describe, expect, it } from 'vitest'
import type { SessionRepository } from '../../src/store/types.js'
import { claimMine, ev, type Ids, TimeWindow } from './contract-helpers.js'

/** Jobs are found through claimMine: other suites sharing the database may hold due jobs too. */
export function describeJobContract ({ store: get, ids }: { store: () => SessionRepository; ids: Ids }): void {
  describe('summary jobs', () => {
    let store: SessionRepository
    beforeAll(() => { store = get() })

    async function endedSessions (n: number): Promise<string[]> {
      const t = new TimeWindow()
      const list = Array.from({ length: n }, () => ids.next())
      await store.appendEvents(list.map((sessionId, i) => ({ sessionId, event: ev.user(1, t.at(i), 't', `q${i}`) })))
      for (const sessionId of list) expect(await store.endSession({ sessionId, endedAt: t.at(60_000) })).toBe(true)
      return list
    }

    it('two workers claiming concurrently never get the same job', async () => {
      const mine = await endedSessions(12)
      const [a, b] = await Promise.all([
        claimMine(store, { workerId: 'w-a', ids: mine, leaseMs: 20_000, limit: 3, want: 'some' }),
        claimMine(store, { workerId: 'w-b', ids: mine, leaseMs: 20_000, limit: 3, want: 'some' })
      ])
      const rest = await claimMine(store, { workerId: 'w-c', ids: mine, leaseMs: 20_000, want: mine.length - a.length - b.length })
      const all = [...a, ...b, ...rest].map((j) => j.sessionId)
      expect(new Set(all).size).toBe(all.length)
      expect(all.sort()).toEqual([...mine].sort())
      for (const job of a) expect(job.attempts).toBeGreaterThanOrEqual(1)
      // Held leases are nobody else's: nothing of ours is claimable now.
      expect(await claimMine(store, { workerId: 'w-d', ids: mine, leaseMs: 20_000, want: 0 })).toEqual([])
      for (const [job, workerId] of [...a.map((j) => [j, 'w-a'] as const), ...b.map((j) => [j, 'w-b'] as const), ...rest.map((j) => [j, 'w-c'] as const)]) {
        expect(await store.completeSummaryJob({ job, workerId: workerId === 'w-a' ? 'w-b' : 'w-a', summary: 'stolen' })).toBe(false)
        expect(await store.completeSummaryJob({ job, workerId, summary: `by ${workerId}` })).toBe(true)
      }
      for (const job of a) expect(await store.getSession(job.sessionId)).toMatchObject({ summary: 'by w-a', summaryStatus: 'ready' })
    })

    it('an expired lease makes the job claimable by another worker; the old holder can no longer complete it', async () => {
      const [id] = await endedSessions(1)
      const [first] = await claimMine(store, { workerId: 'w-slow', ids: [id], leaseMs: 600 })
      expect(await claimMine(store, { workerId: 'w-next', ids: [id], leaseMs: 10_000, want: 0 })).toEqual([])
      const [second] = await claimMine(store, { workerId: 'w-next', ids: [id], leaseMs: 10_000, timeoutMs: 15_000 })
      expect(second).toMatchObject({ sessionId: id, version: first.version })
      expect(second.attempts).toBeGreaterThan(first.attempts)
      expect(Date.parse(second.leaseUntil)).toBeGreaterThan(Date.parse(first.leaseUntil))
      expect(await store.completeSummaryJob({ job: first, workerId: 'w-slow', summary: 'late' })).toBe(false)
      expect(await store.completeSummaryJob({ job: second, workerId: 'w-next', summary: 'on time' })).toBe(true)
      expect(await store.getSession(id)).toMatchObject({ summary: 'on time', summaryStatus: 'ready' })
    })

    it('completes only with the held lease on the current version, and only once', async () => {
      const t = new TimeWindow()
      const [id] = await endedSessions(1)
      const [job] = await claimMine(store, { workerId: 'w-1', ids: [id], leaseMs: 10_000 })
      expect(await store.completeSummaryJob({ job, workerId: 'w-2', summary: 'x' })).toBe(false)
      expect(await store.completeSummaryJob({ job: { ...job, version: job.version + 1 }, workerId: 'w-1', summary: 'x' })).toBe(false)
      // The session comes back and ends again: the old job's version is stale.
      await store.appendEvents([{ sessionId: id, event: ev.connected(2, t.at(100_000)) }])
      expect(await store.endSession({ sessionId: id, endedAt: t.at(100_001) })).toBe(true)
      expect(await store.completeSummaryJob({ job, workerId: 'w-1', summary: 'stale' })).toBe(false)
      const [fresh] = await claimMine(store, { workerId: 'w-1', ids: [id], leaseMs: 10_000 })
      expect(fresh.version).toBe(job.version + 1)
      expect(await store.completeSummaryJob({ job: fresh, workerId: 'w-1', summary: 'fresh' })).toBe(true)
      expect(await store.completeSummaryJob({ job: fresh, workerId: 'w-1', summary: 'again' })).toBe(false)
      expect(await store.getSession(id)).toMatchObject({ summary: 'fresh', summaryStatus: 'ready', summaryError: null })
    })

    it('a failed attempt is retried after retryInMs, then failed with the error kept at maxAttempts', async () => {
      const [id] = await endedSessions(1)
      const [j1] = await claimMine(store, { workerId: 'w-f', ids: [id], leaseMs: 10_000 })
      expect(await store.failSummaryJob({ job: j1, workerId: 'other', error: 'nope', retryInMs: 0, maxAttempts: 10 })).toBe('lost')
      expect(await store.failSummaryJob({ job: j1, workerId: 'w-f', error: 'model down', retryInMs: 600, maxAttempts: j1.attempts + 1 })).toBe('retry')
      expect(await store.getSession(id)).toMatchObject({ summaryStatus: 'pending', status: 'ended' })
      const retriedAt = Date.now()
      const [j2] = await claimMine(store, { workerId: 'w-f', ids: [id], leaseMs: 10_000 })
      expect(Date.now() - retriedAt).toBeGreaterThanOrEqual(400)
      expect(j2.attempts).toBeGreaterThan(j1.attempts)
      expect(await store.failSummaryJob({ job: j2, workerId: 'w-f', error: 'model still down', retryInMs: 0, maxAttempts: j2.attempts })).toBe('failed')
      expect(await store.getSession(id)).toMatchObject({ summaryStatus: 'failed', summaryError: 'model still down', summary: null })
      expect(await claimMine(store, { workerId: 'w-f', ids: [id], leaseMs: 10_000, want: 0 })).toEqual([])
      expect(await store.completeSummaryJob({ job: j2, workerId: 'w-f', summary: 'too late' })).toBe(false)
    })
  })
}
