/** The shared SessionRepository contract (DESIGN §6): every backend runs this suite, through the interface only. */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StoredEvent } from '../../src/protocol.js'
import type { SessionRepository } from '../../src/store/types.js'
import { claimMine, ev, Ids, TimeWindow } from './contract-helpers.js'
import { describeJobContract } from './contract-jobs.js'
import { describeOwnerContract, describeUsageContract } from './contract-owners.js'
import { describeSeqContract } from './contract-seqs.js'

export interface StoreUnderTest { store: SessionRepository; teardown?: () => Promise<void> }

/**
 * Tests may share one database with other suites running in parallel: every session id is random,
 * session lists are read inside a random time window (`before` cursor) or filtered by our ids, and
 * jobs that are not ours are handed back (see claimMine). Every job a test creates is finished
 * before the test ends, so no claimable job is left behind.
 */
export function describeStoreContract (name: string, setup: () => Promise<StoreUnderTest>): void {
  describe(`SessionRepository contract: ${name}`, () => {
    let store: SessionRepository
    let teardown: (() => Promise<void>) | undefined
    const ids = new Ids()

    beforeAll(async () => {
      ({ store, teardown } = await setup())
      await store.init()
    })
    afterAll(async () => {
      if (store !== undefined) await ids.settleJobs(store)
      await teardown?.()
    })

    describe('appendEvents and reads', () => {
      it('creates the session on first append with the documented initial fields', async () => {
        const t = new TimeWindow()
        const id = ids.next()
        await store.appendEvents([{ sessionId: id, event: ev.connected(1, t.at(0)) }, { sessionId: id, event: ev.user(2, t.at(5), 'turn-1', 'Hello there') }])
        const s = await store.getSession(id)
        expect(s).toMatchObject({
          id, status: 'active', endedAt: null, durationMs: null, summary: null, summaryStatus: 'none',
          summaryError: null, messageCount: 1, lastSeq: 2, title: 'Hello there', openTurnId: 'turn-1'
        })
        expect(Date.parse(s!.startedAt)).toBe(Date.parse(t.at(0)))
        expect(Number.isInteger(s!.version)).toBe(true)
        await store.ping()
      })

      it('returns events whole and deep-equal to what was appended, in seq order', async () => {
        const t = new TimeWindow()
        const id = ids.next()
        const events: StoredEvent[] = [
          ev.user(1, t.at(0), 'tu-1', 'Héllo 👋 — "quotes", \\ backslash\nnew line', 'client-1'),
          { type: 'tool_call', seq: 2, ts: t.at(1), turnId: 'tu-1', callId: 'c1', name: 'get_user_profile', arguments: { userId: 'alice', nested: { list: [1, 2.5, null, true], empty: {} } } },
          { type: 'tool_call', seq: 3, ts: t.at(2), turnId: 'tu-1', callId: 'c2', name: 'broken', arguments: '{"not json' },
          { type: 'tool_result', seq: 4, ts: t.at(3), turnId: 'tu-1', callId: 'c1', name: 'get_user_profile', ok: true, result: { name: 'Alice', tags: ['a', 'b'] }, durationMs: 12.5 },
          { type: 'tool_result', seq: 5, ts: t.at(4), turnId: 'tu-1', callId: 'c2', name: 'broken', ok: false, error: 'invalid arguments', durationMs: 0 },
          { type: 'error', seq: 6, ts: t.at(5), code: 'llm_error', message: 'stream broke', retryable: false, turnId: 'tu-1', retryAfterMs: 250 },
          ev.assistant(7, t.at(6), 'tu-1', 'Partial answer', 'error', { promptTokens: 10, completionTokens: 3, totalTokens: 13 }),
          { type: 'disconnected', seq: 8, ts: t.at(7), connectionId: 'conn-1', reason: 'client closed' }
        ]
        await store.appendEvents(events.map((event) => ({ sessionId: id, event })))
        expect(await store.listEvents(id, { after: 0, limit: 100 })).toEqual(events)
        const s = await store.getSession(id)
        expect(s).toMatchObject({ lastSeq: 8, messageCount: 2, openTurnId: null, title: 'Héllo 👋 — "quotes", \\ backslash\nnew line' })
      })

      it('is idempotent on (sessionId, seq): a repeated batch and overlapping batches store one copy', async () => {
        const t = new TimeWindow()
        const id = ids.next()
        const first = [ev.user(1, t.at(0), 'a', 'one'), ev.assistant(2, t.at(1), 'a', 'two'), ev.user(3, t.at(2), 'b', 'three')]
        await store.appendEvents(first.map((event) => ({ sessionId: id, event })))
        await store.appendEvents(first.map((event) => ({ sessionId: id, event })))
        const overlap = [first[2], ev.assistant(4, t.at(3), 'b', 'four'), ev.connected(5, t.at(4))]
        await store.appendEvents(overlap.map((event) => ({ sessionId: id, event })))
        await store.appendEvents(overlap.map((event) => ({ sessionId: id, event })))
        const got = await store.listEvents(id, { after: 0, limit: 100 })
        expect(got.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
        expect(got[2]).toEqual(first[2])
        expect(await store.getSession(id)).toMatchObject({ lastSeq: 5, messageCount: 4, openTurnId: null, title: 'one' })
      })

      it('stores a batch that spans sessions, each in its own log', async () => {
        const t = new TimeWindow()
        const [a, b, c] = [ids.next(), ids.next(), ids.next()]
        await store.appendEvents([
          { sessionId: a, event: ev.connected(1, t.at(0)) },
          { sessionId: b, event: ev.connected(1, t.at(1)) },
          { sessionId: a, event: ev.user(2, t.at(2), 'ta', 'from a') },
          { sessionId: c, event: ev.user(1, t.at(3), 'tc', 'from c') },
          { sessionId: b, event: ev.user(2, t.at(4), 'tb', 'from b') },
          { sessionId: a, event: ev.assistant(3, t.at(5), 'ta', 'reply a') }
        ])
        expect((await store.listEvents(a, { after: 0, limit: 10 })).map((e) => [e.seq, e.type])).toEqual([[1, 'connected'], [2, 'user_message'], [3, 'assistant_message']])
        expect((await store.listEvents(b, { after: 0, limit: 10 })).map((e) => e.seq)).toEqual([1, 2])
        expect((await store.listEvents(c, { after: 0, limit: 10 })).map((e) => e.seq)).toEqual([1])
        expect(await store.getSession(a)).toMatchObject({ lastSeq: 3, messageCount: 2, title: 'from a', openTurnId: null })
        expect(await store.getSession(b)).toMatchObject({ lastSeq: 2, messageCount: 1, title: 'from b', openTurnId: 'tb' })
        expect(await store.getSession(c)).toMatchObject({ lastSeq: 1, messageCount: 1, title: 'from c', openTurnId: 'tc' })
        expect(Date.parse((await store.getSession(b))!.startedAt)).toBe(Date.parse(t.at(1)))
      })

      it('maintains title (first user message, 120 chars), messageCount and openTurnId across turns', async () => {
        const t = new TimeWindow()
        const id = ids.next()
        const long = Array.from({ length: 200 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('')
        const append = (event: StoredEvent) => store.appendEvents([{ sessionId: id, event }])
        await append(ev.connected(1, t.at(0)))
        expect(await store.getSession(id)).toMatchObject({ title: null, messageCount: 0, openTurnId: null, lastSeq: 1 })
        await append(ev.user(2, t.at(1), 't1', long))
        expect(await store.getSession(id)).toMatchObject({ title: long.slice(0, 120), messageCount: 1, openTurnId: 't1' })
        await append({ type: 'tool_call', seq: 3, ts: t.at(2), turnId: 't1', callId: 'x', name: 'n', arguments: {} })
        expect(await store.getSession(id)).toMatchObject({ openTurnId: 't1', messageCount: 1, lastSeq: 3 })
        await append(ev.assistant(4, t.at(3), 't1', 'done'))
        expect(await store.getSession(id)).toMatchObject({ openTurnId: null, messageCount: 2 })
        await append(ev.user(5, t.at(4), 't2', 'second question'))
        expect(await store.getSession(id)).toMatchObject({ title: long.slice(0, 120), openTurnId: 't2', messageCount: 3, lastSeq: 5 })
      })

      it('pages listEvents with after/limit and answers [] for unknown sessions', async () => {
        const t = new TimeWindow()
        const id = ids.next()
        await store.appendEvents(Array.from({ length: 25 }, (_, i) => ({ sessionId: id, event: ev.connected(i + 1, t.at(i)) })))
        const seqs = async (after: number, limit: number) => (await store.listEvents(id, { after, limit })).map((e) => e.seq)
        expect(await seqs(0, 10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        expect(await seqs(10, 10)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
        expect(await seqs(20, 10)).toEqual([21, 22, 23, 24, 25])
        expect(await seqs(25, 10)).toEqual([])
        expect(await seqs(3, 2)).toEqual([4, 5])
        expect(await store.listEvents(ids.next(), { after: 0, limit: 10 })).toEqual([])
        expect(await store.getSession(ids.next())).toBeNull()
      })
    })

    describe('listSessions', () => {
      it('orders most recent first (startedAt, then id), pages with a before cursor and filters by status', async () => {
        const t = new TimeWindow()
        const [old, mid, tieA, tieB] = [ids.next('a'), ids.next('b'), ids.next('c'), ids.next('d')]
        await store.appendEvents([
          { sessionId: old, event: ev.connected(1, t.at(0)) },
          { sessionId: mid, event: ev.connected(1, t.at(1_000)) },
          { sessionId: tieA, event: ev.connected(1, t.at(2_000)) },
          { sessionId: tieB, event: ev.connected(1, t.at(2_000)) }
        ])
        const cursor = t.at(2_001)
        const page1 = await store.listSessions({ limit: 3, before: cursor })
        expect(page1.map((s) => s.id)).toEqual([tieB, tieA, mid])
        expect(page1[2]).toEqual(await store.getSession(mid))
        const page2 = await store.listSessions({ limit: 3, before: page1[2].startedAt })
        expect(page2[0]?.id).toBe(old)
        expect(page2.map((s) => s.id)).not.toContain(mid)

        expect(await store.endSession({ sessionId: mid, endedAt: t.at(1_500) })).toBe(true)
        const mine = (list: Array<{ id: string }>) => list.map((s) => s.id).filter((id) => [old, mid, tieA, tieB].includes(id))
        expect(mine(await store.listSessions({ limit: 4, before: cursor, status: 'ended' }))).toEqual([mid])
        expect(mine(await store.listSessions({ limit: 3, before: cursor, status: 'active' }))).toEqual([tieB, tieA, old])
        const recent = await store.listSessions({ limit: 5 })
        expect(recent.length).toBeLessThanOrEqual(5)
        for (let i = 1; i < recent.length; i++) expect(Date.parse(recent[i - 1].startedAt)).toBeGreaterThanOrEqual(Date.parse(recent[i].startedAt))
      })

      it('pages through sessions that started in the same millisecond with a (startedAt, id) cursor, each once', async () => {
        const t = new TimeWindow()
        const tied = Array.from({ length: 5 }, (_, i) => ids.next(`tie${i}`))
        const earlier = ids.next('earlier')
        await store.appendEvents([
          ...tied.map((sessionId) => ({ sessionId, event: ev.connected(1, t.at(5_000)) })),
          { sessionId: earlier, event: ev.connected(1, t.at(4_999)) }
        ])
        const seen: string[] = []
        let cursor: { before: string; beforeId?: string } = { before: t.at(5_001) }
        for (let page = 0; page < 4; page++) {
          const got = await store.listSessions({ limit: 2, ...cursor })
          seen.push(...got.map((s) => s.id))
          if (got.length < 2 || seen.includes(earlier)) break
          cursor = { before: got.at(-1)!.startedAt, beforeId: got.at(-1)!.id }
        }
        const mine = seen.filter((id) => [...tied, earlier].includes(id))
        // Most recent first, ties by id descending, every session exactly once, the earlier one after all ties.
        expect(mine.slice(0, 5)).toEqual([...tied].sort().reverse())
        expect(mine[5]).toBe(earlier)
        expect(new Set(mine).size).toBe(mine.length)
      })
    })

    describe('endSession', () => {
      it('ends an active session once: duration, pending summary, version bump; then false', async () => {
        const t = new TimeWindow()
        const id = ids.next()
        await store.appendEvents([{ sessionId: id, event: ev.user(1, t.at(0), 't', 'hi') }])
        const before = (await store.getSession(id))!
        expect(await store.endSession({ sessionId: id, endedAt: t.at(90_000) })).toBe(true)
        const s = (await store.getSession(id))!
        expect(s).toMatchObject({ status: 'ended', durationMs: 90_000, summaryStatus: 'pending', version: before.version + 1, summary: null })
        expect(Date.parse(s.endedAt!)).toBe(Date.parse(t.at(90_000)))
        expect(await store.endSession({ sessionId: id, endedAt: t.at(95_000) })).toBe(false)
        expect(await store.getSession(id)).toMatchObject({ version: before.version + 1, durationMs: 90_000 })
        expect(await store.endSession({ sessionId: ids.next(), endedAt: t.at(0) })).toBe(false)
      })

      it('reports a positive duration even when the session ends at its start time', async () => {
        const t = new TimeWindow()
        const id = ids.next()
        await store.appendEvents([{ sessionId: id, event: ev.connected(1, t.at(0)) }])
        expect(await store.endSession({ sessionId: id, endedAt: t.at(0) })).toBe(true)
        expect((await store.getSession(id))!.durationMs).toBeGreaterThan(0)
      })

      it('an append re-activates an ended session; ending it again gives a new version and a new job', async () => {
        const t = new TimeWindow()
        const id = ids.next()
        await store.appendEvents([{ sessionId: id, event: ev.user(1, t.at(0), 't1', 'first') }, { sessionId: id, event: ev.assistant(2, t.at(1), 't1', 'ok') }])
        await store.endSession({ sessionId: id, endedAt: t.at(10_000) })
        const ended1 = (await store.getSession(id))!
        const [job1] = await claimMine(store, { workerId: 'w-react', ids: [id], leaseMs: 10_000 })
        expect(job1).toMatchObject({ sessionId: id, version: ended1.version })
        expect(await store.completeSummaryJob({ job: job1, workerId: 'w-react', summary: 'summary one' })).toBe(true)

        await store.appendEvents([{ sessionId: id, event: ev.connected(3, t.at(20_000)) }])
        const again = (await store.getSession(id))!
        expect(again).toMatchObject({ status: 'active', endedAt: null, durationMs: null, summary: 'summary one', summaryStatus: 'ready', version: ended1.version, lastSeq: 3 })
        // Re-appending an already stored event is a no-op, not a new activity.
        expect(await store.endSession({ sessionId: id, endedAt: t.at(30_000) })).toBe(true)
        await store.appendEvents([{ sessionId: id, event: ev.connected(3, t.at(20_000)) }])
        expect((await store.getSession(id))!.status).toBe('ended')

        const ended2 = (await store.getSession(id))!
        expect(ended2).toMatchObject({ status: 'ended', version: ended1.version + 1, summaryStatus: 'pending', durationMs: 30_000 })
        const [job2] = await claimMine(store, { workerId: 'w-react', ids: [id], leaseMs: 10_000 })
        expect(job2).toMatchObject({ sessionId: id, version: ended2.version })
        expect(await store.completeSummaryJob({ job: job2, workerId: 'w-react', summary: 'summary two' })).toBe(true)
        expect(await store.getSession(id)).toMatchObject({ summary: 'summary two', summaryStatus: 'ready' })
      })
    })

    describeJobContract({ store: () => store, ids })
    describeOwnerContract({ store: () => store, ids })
    describeUsageContract({ store: () => store })
    describeSeqContract({ store: () => store, ids })

    describe('profiles', () => {
      it('knows the seeded demo users and answers null for others', async () => {
        const alice = await store.getProfile('alice')
        expect(alice).toMatchObject({ userId: 'alice', email: expect.stringMatching(/^[^@\s]+@example\.com$/) })
        expect(typeof alice!.name).toBe('string')
        expect(typeof alice!.plan).toBe('string')
        expect(Number.isNaN(Date.parse(alice!.createdAt))).toBe(false)
        expect(alice!.preferences).toBeTypeOf('object')
        for (const userId of ['bob', 'demo', 'user-42']) expect((await store.getProfile(userId))?.userId).toBe(userId)
        expect(await store.getProfile(`nobody-${randomUUID()}`)).toBeNull()
      })
    })

    it('hands out copies: mutating a returned object does not change the store', async () => {
      const t = new TimeWindow()
      const id = ids.next()
      await store.appendEvents([{ sessionId: id, event: ev.user(1, t.at(0), 't', 'original') }])
      const [e] = await store.listEvents(id, { after: 0, limit: 1 })
      if (e.type === 'user_message') e.content = 'mutated'
      const s = (await store.getSession(id))!
      s.title = 'mutated'
      expect((await store.listEvents(id, { after: 0, limit: 1 }))[0]).toMatchObject({ content: 'original' })
      expect((await store.getSession(id))!.title).toBe('original')
    })
  })
}
