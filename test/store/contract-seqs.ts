/** The seq-reservation part of the store contract (DESIGN §11: no seq ever reused, also after a crash). */
import { beforeAll, describe, expect, it } from 'vitest'
import { StoreError, type SessionRepository } from '../../src/store/types.js'
import { ev, type Ids, TimeWindow } from './contract-helpers.js'

export function describeSeqContract ({ store: get, ids }: { store: () => SessionRepository; ids: Ids }): void {
  describe('seq reservation', () => {
    let store: SessionRepository
    beforeAll(() => { store = get() })

    it('reserves consecutive blocks past every earlier one, creating an empty active session', async () => {
      const id = ids.next('seq')
      expect(await store.reserveSeqs({ sessionId: id, count: 10 })).toEqual({ from: 1, to: 10 })
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
      expect(await store.reserveSeqs({ sessionId: id, count: 20 })).toEqual({ from: 1, to: 20 })
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

    it('with create false, a new session gets nothing reserved and no row; an existing one its block', async () => {
      const id = ids.next('seq')
      expect(await store.reserveSeqs({ sessionId: id, count: 8, create: false })).toEqual({ from: 1, to: 0 })
      expect(await store.getSession(id)).toBeNull()
      expect(await store.reserveSeqs({ sessionId: id, count: 8 })).toEqual({ from: 1, to: 8 })
      expect(await store.reserveSeqs({ sessionId: id, count: 8, create: false })).toEqual({ from: 9, to: 16 })
    })

    it('refuses a bad count or id for good', async () => {
      for (const bad of [0, -1]) {
        const err = await store.reserveSeqs({ sessionId: ids.next('seq'), count: bad }).then(() => null, (e: unknown) => e)
        expect(err).toBeInstanceOf(StoreError)
        expect((err as StoreError).retryable).toBe(false)
      }
      const err = await store.reserveSeqs({ sessionId: '', count: 1 }).then(() => null, (e: unknown) => e)
      expect(err).toBeInstanceOf(StoreError)
    })
  })
}
