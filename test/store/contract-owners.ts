/** The identity part of the store contract (DESIGN §10): session owners, listing by owner, per-user daily token usage. */
import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { StoreError, type SessionRecord, type SessionRepository } from '../../src/store/types.js'
import { ev, type Ids, TimeWindow } from './contract-helpers.js'

/** Owners and principals are random, so other suites sharing the database never see ours. */
const principal = (label: string): string => `${label}-${randomUUID()}`

async function refusal (p: Promise<unknown>): Promise<StoreError> {
  const err = await p.then(() => { throw new Error('expected a rejection') }, (e: unknown) => e)
  expect(err).toBeInstanceOf(StoreError)
  expect((err as StoreError).retryable).toBe(false)
  return err as StoreError
}

/** Most recent first, ties by id descending: the order listSessions promises. */
function byListOrder (a: SessionRecord, b: SessionRecord): number {
  return Date.parse(b.startedAt) - Date.parse(a.startedAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
}

export function describeOwnerContract ({ store: get, ids }: { store: () => SessionRepository; ids: Ids }): void {
  describe('session owners', () => {
    let store: SessionRepository
    beforeAll(() => { store = get() })

    it('claimSession creates an active, empty session owned by the claimant, started now', async () => {
      const id = ids.next('own')
      const owner = principal('alice')
      const from = Date.now()
      expect(await store.claimSession({ sessionId: id, owner })).toBe(owner)
      const to = Date.now()
      const s = (await store.getSession(id))!
      expect(s).toMatchObject({
        id, owner, status: 'active', endedAt: null, durationMs: null, summary: null, summaryStatus: 'none',
        messageCount: 0, lastSeq: 0, title: null, openTurnId: null
      })
      // Same machine, possibly another clock source (the database's now()): a generous second either side.
      expect(Date.parse(s.startedAt)).toBeGreaterThanOrEqual(from - 1_000)
      expect(Date.parse(s.startedAt)).toBeLessThanOrEqual(to + 1_000)
      expect(await store.listEvents(id, { after: 0, limit: 10 })).toEqual([])
    })

    it('claimSession answers the existing owner and never changes it', async () => {
      const id = ids.next('own')
      const [alice, bob] = [principal('alice'), principal('bob')]
      expect(await store.claimSession({ sessionId: id, owner: alice })).toBe(alice)
      const first = (await store.getSession(id))!
      expect(await store.claimSession({ sessionId: id, owner: bob })).toBe(alice)
      expect(await store.claimSession({ sessionId: id, owner: alice })).toBe(alice)
      expect(await store.getSession(id)).toEqual(first)
    })

    it('a session created by appendEvents (auth off) keeps its null owner when someone claims it', async () => {
      const t = new TimeWindow()
      const id = ids.next('own')
      await store.appendEvents([{ sessionId: id, event: ev.user(1, t.at(0), 't1', 'anonymous') }])
      expect((await store.getSession(id))!.owner).toBeNull()
      expect(await store.claimSession({ sessionId: id, owner: principal('mallory') })).toBeNull()
      expect(await store.getSession(id)).toMatchObject({ id, owner: null, title: 'anonymous', lastSeq: 1 })
    })

    it('two principals claiming one new id at once agree on a single winner (20 races)', async () => {
      const races = Array.from({ length: 20 }, () => ({ id: ids.next('race'), a: principal('a'), b: principal('b') }))
      const answers = await Promise.all(races.map(async ({ id, a, b }) =>
        await Promise.all([store.claimSession({ sessionId: id, owner: a }), store.claimSession({ sessionId: id, owner: b })])))
      for (const [i, { id, a, b }] of races.entries()) {
        const [fromA, fromB] = answers[i]
        expect(fromA).toBe(fromB)
        expect([a, b]).toContain(fromA)
        expect((await store.getSession(id))!.owner).toBe(fromA)
      }
    })

    it('refuses a claim without an owner or a session id', async () => {
      const id = ids.next('own')
      await refusal(store.claimSession({ sessionId: id, owner: '' }))
      await refusal(store.claimSession({ sessionId: '', owner: principal('x') }))
      expect(await store.getSession(id)).toBeNull()
    })

    it('appends, ending and re-activating keep the owner; getSession and listSessions show it', async () => {
      const id = ids.next('own')
      const owner = principal('carol')
      await store.claimSession({ sessionId: id, owner })
      const startedAt = (await store.getSession(id))!.startedAt
      const ts = new Date(Date.parse(startedAt) + 10).toISOString()
      await store.appendEvents([{ sessionId: id, event: ev.user(1, ts, 't1', 'mine') }, { sessionId: id, event: ev.assistant(2, ts, 't1', 'ok') }])
      expect(await store.getSession(id)).toMatchObject({ owner, startedAt, lastSeq: 2, messageCount: 2, title: 'mine', openTurnId: null })
      expect(await store.endSession({ sessionId: id, endedAt: new Date(Date.parse(startedAt) + 5_000).toISOString() })).toBe(true)
      await store.appendEvents([{ sessionId: id, event: ev.connected(3, ts) }])
      const s = (await store.getSession(id))!
      expect(s).toMatchObject({ owner, status: 'active', lastSeq: 3 })
      expect(await store.listSessions({ limit: 10, owner })).toEqual([s])
    })

    it('listSessions({ owner }) lists only that owner\'s sessions, paged with the (startedAt, id) cursor, each once', async () => {
      const [alice, bob] = [principal('alice'), principal('bob')]
      const mine = Array.from({ length: 7 }, () => ids.next('pa'))
      const theirs = Array.from({ length: 3 }, () => ids.next('pb'))
      // Claimed at once, so several share a millisecond and the id tie-break matters.
      await Promise.all([
        ...mine.map(async (sessionId) => await store.claimSession({ sessionId, owner: alice })),
        ...theirs.map(async (sessionId) => await store.claimSession({ sessionId, owner: bob }))
      ])
      // An unowned session (auth off) in the same moment belongs to nobody's list.
      const unowned = ids.next('pn')
      await store.appendEvents([{ sessionId: unowned, event: ev.connected(1, new Date().toISOString()) }])

      const expected = (await Promise.all(mine.map(async (id) => (await store.getSession(id))!))).sort(byListOrder)
      const seen: SessionRecord[] = []
      let cursor: { before?: string; beforeId?: string } = {}
      for (let page = 0; page < 10; page++) {
        const got = await store.listSessions({ limit: 3, owner: alice, ...cursor })
        expect(got.length).toBeLessThanOrEqual(3)
        seen.push(...got)
        if (got.length < 3) break
        cursor = { before: got.at(-1)!.startedAt, beforeId: got.at(-1)!.id }
      }
      expect(seen).toEqual(expected)
      expect(seen.map((s) => s.owner)).toEqual(mine.map(() => alice))

      const bobs = await store.listSessions({ limit: 10, owner: bob })
      expect(bobs.map((s) => s.id).sort()).toEqual([...theirs].sort())
      expect(await store.listSessions({ limit: 10, owner: principal('nobody') })).toEqual([])

      // owner and status combine.
      const ended = expected[2].id
      expect(await store.endSession({ sessionId: ended, endedAt: new Date(Date.parse(expected[2].startedAt) + 1_000).toISOString() })).toBe(true)
      expect((await store.listSessions({ limit: 10, owner: alice, status: 'ended' })).map((s) => s.id)).toEqual([ended])
      expect((await store.listSessions({ limit: 10, owner: alice, status: 'active' })).map((s) => s.id))
        .toEqual(expected.map((s) => s.id).filter((id) => id !== ended))
      expect((await store.listSessions({ limit: 10, owner: bob, status: 'ended' }))).toEqual([])
    })
  })
}

export function describeUsageContract ({ store: get }: { store: () => SessionRepository }): void {
  describe('remembered approvals', () => {
    let store: SessionRepository
    beforeAll(() => { store = get() })

    it('remembers "always" per subject and tool, idempotently, and nothing else', async () => {
      const [p, q] = [principal('approve-p'), principal('approve-q')]
      expect(await store.isApprovalRemembered({ subject: p, tool: 'everything__echo' })).toBe(false)
      await store.rememberApproval({ subject: p, tool: 'everything__echo' })
      await store.rememberApproval({ subject: p, tool: 'everything__echo' })
      expect(await store.isApprovalRemembered({ subject: p, tool: 'everything__echo' })).toBe(true)
      expect(await store.isApprovalRemembered({ subject: p, tool: 'everything__get-sum' })).toBe(false)
      expect(await store.isApprovalRemembered({ subject: q, tool: 'everything__echo' })).toBe(false)
      await refusal(store.rememberApproval({ subject: '', tool: 'x' }))
      await refusal(store.rememberApproval({ subject: q, tool: '' }))
      expect(await store.isApprovalRemembered({ subject: q, tool: '' })).toBe(false)
    })
  })

  describe('usage', () => {
    let store: SessionRepository
    beforeAll(() => { store = get() })

    it('adds per principal and per UTC day, returning the new total; other days and principals are untouched', async () => {
      const [p, q] = [principal('usage-p'), principal('usage-q')]
      const [day1, day2] = ['2031-05-06', '2031-05-07']
      expect(await store.getUsage({ principal: p, day: day1 })).toBe(0)
      expect(await store.addUsage({ principal: p, day: day1, tokens: 120 })).toBe(120)
      expect(await store.addUsage({ principal: p, day: day1, tokens: 30 })).toBe(150)
      expect(await store.addUsage({ principal: p, day: day1, tokens: 0 })).toBe(150)
      expect(await store.getUsage({ principal: p, day: day2 })).toBe(0)
      expect(await store.addUsage({ principal: p, day: day2, tokens: 7 })).toBe(7)
      expect(await store.addUsage({ principal: q, day: day1, tokens: 1_000_000_000_000 })).toBe(1_000_000_000_000)
      expect(await store.getUsage({ principal: p, day: day1 })).toBe(150)
      expect(await store.getUsage({ principal: p, day: day2 })).toBe(7)
      expect(await store.getUsage({ principal: q, day: day1 })).toBe(1_000_000_000_000)
      expect(await store.getUsage({ principal: q, day: day2 })).toBe(0)
      expect(typeof await store.getUsage({ principal: p, day: day1 })).toBe('number')
    })

    it('refuses negative tokens and days that are not dates, changing nothing', async () => {
      const p = principal('usage-bad')
      await store.addUsage({ principal: p, day: '2031-05-06', tokens: 10 })
      await refusal(store.addUsage({ principal: p, day: '2031-05-06', tokens: -5 }))
      await refusal(store.addUsage({ principal: p, day: 'not-a-day', tokens: 5 }))
      await refusal(store.addUsage({ principal: p, day: '2031-02-30', tokens: 5 }))
      await refusal(store.getUsage({ principal: p, day: 'not-a-day' }))
      expect(await store.getUsage({ principal: p, day: '2031-05-06' })).toBe(10)
    })

    it('a concurrent burst of 50 additions sums exactly; each call sees its own running total', async () => {
      const p = principal('usage-burst')
      const day = '2031-05-08'
      const totals = await Promise.all(Array.from({ length: 50 }, async (_, i) => await store.addUsage({ principal: p, day, tokens: i + 1 })))
      const sum = (50 * 51) / 2
      expect(await store.getUsage({ principal: p, day })).toBe(sum)
      // Positive additions applied one at a time give 50 distinct running totals, the last being the sum.
      expect(new Set(totals).size).toBe(50)
      expect(Math.max(...totals)).toBe(sum)
      expect(Math.min(...totals)).toBeGreaterThanOrEqual(1)
    })
  })
}
