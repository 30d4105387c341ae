/** The seq-reservation part of the store contract (DESIGN §11: no seq ever reused, also after a crash). */
import { beforeAll, describe, expect, it } from 'vitest'
import { FencedError, StoreError, type SessionRepository } from '../../src/store/types.js'
import { ev, type Ids, TimeWindow } from './contract-helpers.js'

export function describeSeqContract ({ store: get, ids }: { store: () => SessionRepository; ids: Ids }): void {
  describe('seq reservation', () => {
    let store: SessionRepository
    beforeAll(() => { store = get() })

    it('reserves consecutive blocks past every earlier one, creating an empty active session', async () => {
      const id = ids.next('seq')
      expect(await store.acquireSession({ sessionId: id, instanceId: 'inst-a', leaseMs: 60_000, count: 10, create: true })).toEqual({ type: 'owned', epoch: 1, from: 1, to: 10 })
      expect(await store.getSession(id)).toMatchObject({ id, status: 'active', lastSeq: 0, messageCount: 0, owner: null })
      expect(await store.reserveSeqs({ sessionId: id, count: 5 })).toEqual({ from: 11, to: 15 })
      // A restart after a crash: whatever was reserved may have been sent; the next block starts past it.
      expect(await store.reserveSeqs({ sessionId: id, count: 3 })).toEqual({ from: 16, to: 18 })
    })

    it('starts past the highest stored seq of a session stored before reservations existed', async () => {
      const t = new TimeWindow()
      const id = ids.next('seq')
      await store.appendEvents([1, 2, 3, 4].map((seq) => ({ sessionId: id, event: ev.connected(seq, t.at(seq), `c${seq}`) })))
      expect(await store.reserveSeqs({ sessionId: id, count: 4 })).toEqual({ from: 5, to: 8 })
    })

    it('release gives back the unused rest, never below a stored or used seq', async () => {
      const t = new TimeWindow()
      const id = ids.next('seq')
      expect(await store.acquireSession({ sessionId: id, instanceId: 'inst-a', leaseMs: 60_000, count: 20, create: true })).toMatchObject({ from: 1, to: 20 })
      await store.appendEvents([1, 2, 3].map((seq) => ({ sessionId: id, event: ev.connected(seq, t.at(seq), `c${seq}`) })))
      // Seq 5 was numbered (and maybe sent) but is not stored: it stays taken.
      await store.releaseSeqs({ sessionId: id, used: 5 })
      expect(await store.reserveSeqs({ sessionId: id, count: 2 })).toEqual({ from: 6, to: 7 })
      // Releasing below the stored seqs keeps them.
      await store.releaseSeqs({ sessionId: id, used: 1 })
      expect(await store.reserveSeqs({ sessionId: id, count: 1 })).toEqual({ from: 4, to: 4 })
      // A release never raises the mark; an unknown session is no error.
      await store.releaseSeqs({ sessionId: id, used: 100 })
      expect(await store.reserveSeqs({ sessionId: id, count: 1 })).toEqual({ from: 5, to: 5 })
      await store.releaseSeqs({ sessionId: ids.next('seq-unknown'), used: 3 })
    })

    it('acquireSession with create false: a new session gets epoch 0, nothing reserved and no row', async () => {
      const id = ids.next('seq')
      const lease = { sessionId: id, instanceId: 'inst-a', leaseMs: 60_000, count: 8 }
      expect(await store.acquireSession({ ...lease, create: false })).toEqual({ type: 'owned', epoch: 0, from: 1, to: 0 })
      expect(await store.getSession(id)).toBeNull()
      expect(await store.reserveSeqs({ sessionId: id, count: 8 })).toEqual({ from: 1, to: 0 })
      expect(await store.acquireSession({ ...lease, create: true })).toEqual({ type: 'owned', epoch: 1, from: 1, to: 8 })
      expect(await store.getSession(id)).toMatchObject({ id, status: 'active', lastSeq: 0, owner: null })
    })

    it('refuses a bad count or id for good', async () => {
      for (const bad of [0, -1]) {
        const err = await store.acquireSession({ sessionId: ids.next('seq'), instanceId: 'inst-a', leaseMs: 1_000, count: bad, create: true }).then(() => null, (e: unknown) => e)
        expect(err).toBeInstanceOf(StoreError)
        expect((err as StoreError).retryable).toBe(false)
      }
      const err = await store.acquireSession({ sessionId: '', instanceId: 'inst-a', leaseMs: 1_000, count: 1, create: true }).then(() => null, (e: unknown) => e)
      expect(err).toBeInstanceOf(StoreError)
    })
  })

  describe('owner leases and fencing', () => {
    let store: SessionRepository
    beforeAll(() => { store = get() })
    const acquire = (sessionId: string, instanceId: string, leaseMs = 60_000) =>
      store.acquireSession({ sessionId, instanceId, leaseMs, count: 10, create: true })

    it('a live lease is held: another instance is told who holds it; its holder re-acquires with a new epoch', async () => {
      const id = ids.next('lease')
      expect(await acquire(id, 'inst-a')).toMatchObject({ type: 'owned', epoch: 1 })
      const held = await acquire(id, 'inst-b')
      expect(held).toMatchObject({ type: 'held', instance: 'inst-a' })
      expect(Date.parse((held as { until: string }).until)).toBeGreaterThan(Date.now())
      expect(await acquire(id, 'inst-a')).toMatchObject({ type: 'owned', epoch: 2, from: 11, to: 20 })
    })

    it('an expired lease is taken over; the old epoch is refused for appends, reservations, ends and renewals', async () => {
      const t = new TimeWindow()
      const id = ids.next('lease')
      const a = await acquire(id, 'inst-a', 300)
      if (a.type !== 'owned') throw new Error('expected the lease')
      await store.appendEvents([{ sessionId: id, epoch: a.epoch, event: ev.connected(1, t.at(1), 'a1') }])
      expect(await store.renewLeases({ instanceId: 'inst-a', leaseMs: 300, leases: [{ sessionId: id, epoch: a.epoch }] })).toEqual([])
      // Waits out the lease the way a paused owner would: polling the store, not sleeping a fixed time.
      let b = await acquire(id, 'inst-b')
      for (let i = 0; b.type === 'held' && i < 100; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        b = await acquire(id, 'inst-b')
      }
      expect(b).toMatchObject({ type: 'owned', epoch: a.epoch + 1, from: 11, to: 20 })
      const fenced = async (p: Promise<unknown>): Promise<void> => {
        const err = await p.then(() => null, (e: unknown) => e)
        expect(err).toBeInstanceOf(FencedError)
        expect((err as StoreError).retryable).toBe(false)
      }
      await fenced(store.appendEvents([{ sessionId: id, epoch: a.epoch, event: ev.connected(2, t.at(2), 'a2') }]))
      await fenced(store.reserveSeqs({ sessionId: id, count: 5, epoch: a.epoch }))
      await fenced(store.endSession({ sessionId: id, endedAt: t.at(3), epoch: a.epoch }))
      expect(await store.renewLeases({ instanceId: 'inst-a', leaseMs: 300, leases: [{ sessionId: id, epoch: a.epoch }] })).toEqual([id])
      // A release under the old epoch changes nothing.
      await store.releaseSeqs({ sessionId: id, used: 1, epoch: a.epoch })
      expect(await store.listEvents(id, { after: 0, limit: 10 })).toEqual([ev.connected(1, t.at(1), 'a1')])
      // The new owner writes; its release lets the lease go so another instance may take it at once.
      await store.appendEvents([{ sessionId: id, epoch: b.type === 'owned' ? b.epoch : -1, event: ev.connected(11, t.at(4), 'b1') }])
      await store.releaseSeqs({ sessionId: id, used: 11, epoch: b.type === 'owned' ? b.epoch : -1 })
      expect(await acquire(id, 'inst-c')).toMatchObject({ type: 'owned', epoch: a.epoch + 2, from: 12 })
      expect(await store.getSession(id)).toMatchObject({ lastSeq: 11, status: 'active' })
    })

    it('an append that differs from a stored event under the same seq is refused, and nothing of its batch is stored', async () => {
      const t = new TimeWindow()
      const id = ids.next('conflict')
      await store.appendEvents([{ sessionId: id, event: ev.user(1, t.at(1), 'tu', 'original') }])
      const err = await store.appendEvents([
        { sessionId: id, event: ev.connected(2, t.at(2)) },
        { sessionId: id, event: ev.user(1, t.at(1), 'tu', 'CHANGED') }
      ]).then(() => null, (e: unknown) => e)
      expect(err).toBeInstanceOf(StoreError)
      expect(err).not.toBeInstanceOf(FencedError)
      expect((err as StoreError).retryable).toBe(false)
      expect(await store.listEvents(id, { after: 0, limit: 10 })).toEqual([ev.user(1, t.at(1), 'tu', 'original')])
      // The very same event again is a harmless retry.
      await store.appendEvents([{ sessionId: id, event: ev.user(1, t.at(1), 'tu', 'original') }])
    })
  })
}
