/** The memory store's owner lease, seq reservation and fencing, on an injected clock: exact expiry, epochs and ranges. */
import { describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../src/store/memory.js'
import { FencedError, StoreError, type SessionRepository } from '../../src/store/types.js'

const T0 = Date.UTC(2030, 0, 1)
const iso = (ms: number) => new Date(ms).toISOString()

function setup () {
  const clock = { now: T0 }
  const store = createMemoryStore({ now: () => clock.now })
  const acquire = (sessionId: string, instanceId: string, opts: { leaseMs?: number; count?: number; create?: boolean } = {}) =>
    store.acquireSession({ sessionId, instanceId, leaseMs: opts.leaseMs ?? 1_000, count: opts.count ?? 10, create: opts.create ?? true })
  return { clock, store, acquire }
}

async function refusal (p: Promise<unknown>): Promise<StoreError> {
  const err = await p.then(() => null, (e: unknown) => e)
  if (!(err instanceof StoreError)) throw new Error(`expected a StoreError, got ${String(err)}`)
  return err
}

const connected = (seq: number) => ({ type: 'connected' as const, seq, ts: iso(T0 + seq), connectionId: `c${seq}` })
const append = (store: SessionRepository, sessionId: string, seq: number, epoch?: number) =>
  store.appendEvents([{ sessionId, event: connected(seq), ...(epoch === undefined ? {} : { epoch }) }])

describe('claimSession', () => {
  it('the first claim creates the session for its owner; later claims answer that owner', async () => {
    const { store, clock } = setup()
    expect(await store.claimSession({ sessionId: 's', owner: 'alice' })).toBe('alice')
    expect(await store.claimSession({ sessionId: 's', owner: 'bob' })).toBe('alice')
    expect(await store.getSession('s')).toMatchObject({ owner: 'alice', status: 'active', startedAt: iso(clock.now) })
  })

  it('refuses an empty or non-string id or owner, for good', async () => {
    const { store } = setup()
    for (const opts of [{ sessionId: '', owner: 'a' }, { sessionId: 's', owner: '' }, { sessionId: 7, owner: 'a' }, { sessionId: 's', owner: null }]) {
      const err = await refusal(store.claimSession(opts as never))
      expect(err.retryable).toBe(false)
      expect(err.message).toMatch(/^claimSession: (sessionId|owner) must be a non-empty string$/)
    }
    expect(await store.getSession('s')).toBeNull()
  })
})

describe('acquireSession', () => {
  it('a new session: epoch 1 and the first count seqs; without create, epoch 0, nothing reserved, nothing created', async () => {
    const { store, acquire } = setup()
    expect(await acquire('none', 'a', { create: false })).toEqual({ type: 'owned', epoch: 0, from: 1, to: 0 })
    expect(await store.getSession('none')).toBeNull()
    expect(await acquire('s', 'a', { count: 5 })).toEqual({ type: 'owned', epoch: 1, from: 1, to: 5 })
    expect(await store.getSession('s')).toMatchObject({ owner: null, lastSeq: 0 })
  })

  it('is held by another instance until exactly its expiry; then taken over with the next epoch', async () => {
    const { clock, acquire } = setup()
    expect(await acquire('s', 'a', { leaseMs: 1_000 })).toMatchObject({ epoch: 1 })
    clock.now = T0 + 999
    expect(await acquire('s', 'b')).toEqual({ type: 'held', instance: 'a', until: iso(T0 + 1_000) })
    clock.now = T0 + 1_000
    expect(await acquire('s', 'b', { leaseMs: 500 })).toEqual({ type: 'owned', epoch: 2, from: 11, to: 20 })
    clock.now = T0 + 1_499
    expect(await acquire('s', 'a')).toEqual({ type: 'held', instance: 'b', until: iso(T0 + 1_500) })
  })

  it('the holder itself re-acquires at once, with a new epoch and a fresh lease', async () => {
    const { clock, acquire } = setup()
    await acquire('s', 'a', { leaseMs: 1_000 })
    clock.now = T0 + 10
    expect(await acquire('s', 'a', { leaseMs: 1_000 })).toEqual({ type: 'owned', epoch: 2, from: 11, to: 20 })
    clock.now = T0 + 1_009
    expect(await acquire('s', 'b')).toEqual({ type: 'held', instance: 'a', until: iso(T0 + 1_010) })
  })

  it('refuses bad ids, counts and lease lengths for good', async () => {
    const { store } = setup()
    const bad = [
      { sessionId: '', instanceId: 'a', leaseMs: 1, count: 1 },
      { sessionId: 's', instanceId: '', leaseMs: 1, count: 1 },
      { sessionId: 7, instanceId: 'a', leaseMs: 1, count: 1 },
      { sessionId: 's', instanceId: 7, leaseMs: 1, count: 1 },
      { sessionId: 's', instanceId: 'a', leaseMs: 1, count: 0 },
      { sessionId: 's', instanceId: 'a', leaseMs: 1, count: 1.5 },
      { sessionId: 's', instanceId: 'a', leaseMs: 0, count: 1 },
      { sessionId: 's', instanceId: 'a', leaseMs: Number.NaN, count: 1 }
    ]
    for (const opts of bad) {
      const err = await refusal(store.acquireSession({ ...opts, create: true } as never))
      expect(err.retryable).toBe(false)
    }
    expect((await refusal(store.acquireSession({ sessionId: '', instanceId: 'a', leaseMs: 1, count: 1, create: true }))).message)
      .toBe('acquireSession: sessionId and instanceId must be non-empty strings')
    expect((await refusal(store.acquireSession({ sessionId: 's', instanceId: 'a', leaseMs: 0, count: 2, create: true }))).message)
      .toBe('acquireSession: count and leaseMs must be positive, got 2 and 0')
    expect(await store.getSession('s')).toBeNull()
    expect(await store.acquireSession({ sessionId: 's', instanceId: 'a', leaseMs: 1, count: 1, create: true })).toMatchObject({ from: 1, to: 1 })
  })
})

describe('reserveSeqs', () => {
  it('hands out consecutive ranges after the stored events and earlier reservations', async () => {
    const { store } = setup()
    expect(await store.reserveSeqs({ sessionId: 'none', count: 3 })).toEqual({ from: 1, to: 0 })
    await append(store, 's', 1)
    await append(store, 's', 2)
    expect(await store.reserveSeqs({ sessionId: 's', count: 3 })).toEqual({ from: 3, to: 5 })
    expect(await store.reserveSeqs({ sessionId: 's', count: 1 })).toEqual({ from: 6, to: 6 })
    // Events stored past the reservations move the mark on.
    await append(store, 's', 9)
    expect(await store.reserveSeqs({ sessionId: 's', count: 2 })).toEqual({ from: 10, to: 11 })
  })

  it('refuses a count that is not a positive integer', async () => {
    const { store } = setup()
    for (const count of [0, -1, 2.5, Number.NaN]) {
      const err = await refusal(store.reserveSeqs({ sessionId: 's', count }))
      expect(err.message).toBe(`reserveSeqs: count must be a positive integer, got ${String(count)}`)
      expect(err.retryable).toBe(false)
    }
  })

  it('is fenced under an old epoch, free without one', async () => {
    const { store, acquire } = setup()
    await acquire('s', 'a')
    await acquire('s', 'a')
    const err = await refusal(store.reserveSeqs({ sessionId: 's', count: 1, epoch: 1 }))
    expect(err).toBeInstanceOf(FencedError)
    expect(err.message).toBe('reserveSeqs: session s is owned under a newer epoch')
    expect(await store.reserveSeqs({ sessionId: 's', count: 1, epoch: 2 })).toEqual({ from: 21, to: 21 })
    expect(await store.reserveSeqs({ sessionId: 's', count: 1 })).toEqual({ from: 22, to: 22 })
  })
})

describe('renewLeases', () => {
  it('extends only leases this instance holds under their epoch; answers the others sorted', async () => {
    const { clock, store, acquire } = setup()
    await acquire('x', 'a', { leaseMs: 1_000 })
    await acquire('y', 'a', { leaseMs: 1_000 })
    await acquire('z', 'b', { leaseMs: 1_000 })
    clock.now = T0 + 900
    const lost = await store.renewLeases({
      instanceId: 'a', leaseMs: 1_000,
      leases: [{ sessionId: 'z', epoch: 1 }, { sessionId: 'y', epoch: 2 }, { sessionId: 'x', epoch: 1 }, { sessionId: 'gone', epoch: 1 }]
    })
    expect(lost).toEqual(['gone', 'y', 'z'])
    clock.now = T0 + 1_899
    expect(await acquire('x', 'b')).toEqual({ type: 'held', instance: 'a', until: iso(T0 + 1_900) })
    // y was not renewed: it expired at T0 + 1000.
    expect(await acquire('y', 'b')).toMatchObject({ type: 'owned', epoch: 2 })
  })
})

describe('releaseSeqs', () => {
  it('gives back the unused reservation and the lease, so another instance takes over at once', async () => {
    const { store, acquire } = setup()
    expect(await acquire('s', 'a', { leaseMs: 60_000 })).toMatchObject({ from: 1, to: 10 })
    await append(store, 's', 1, 1)
    await append(store, 's', 2, 1)
    await store.releaseSeqs({ sessionId: 's', used: 3, epoch: 1 })
    expect(await acquire('s', 'b')).toEqual({ type: 'owned', epoch: 2, from: 4, to: 13 })
  })

  it('never gives back seqs below a stored event', async () => {
    const { store, acquire } = setup()
    await acquire('s', 'a')
    await append(store, 's', 5, 1)
    await store.releaseSeqs({ sessionId: 's', used: 2, epoch: 1 })
    expect(await store.reserveSeqs({ sessionId: 's', count: 1 })).toEqual({ from: 6, to: 6 })
  })

  it('without an epoch trims the reservation but keeps the lease; under an old epoch or for no session it does nothing', async () => {
    const { store, acquire } = setup()
    await acquire('s', 'a', { leaseMs: 60_000 })
    await store.releaseSeqs({ sessionId: 's', used: 4 })
    expect(await acquire('s', 'b')).toMatchObject({ type: 'held', instance: 'a' })
    expect(await store.reserveSeqs({ sessionId: 's', count: 1 })).toEqual({ from: 5, to: 5 })
    await acquire('s', 'a')
    await store.releaseSeqs({ sessionId: 's', used: 0, epoch: 1 })
    expect(await acquire('s', 'b')).toMatchObject({ type: 'held', instance: 'a' })
    expect(await store.reserveSeqs({ sessionId: 's', count: 1 })).toEqual({ from: 16, to: 16 })
    await store.releaseSeqs({ sessionId: 'none', used: 0, epoch: 1 })
    expect(await store.getSession('none')).toBeNull()
  })
})

describe('fencing of appends and ends', () => {
  it('an old epoch is refused, the current one and none are not', async () => {
    const { store, acquire } = setup()
    await acquire('s', 'a')
    await acquire('s', 'a')
    expect(await refusal(append(store, 's', 1, 1))).toBeInstanceOf(FencedError)
    await append(store, 's', 1, 2)
    await append(store, 's', 2)
    const ended = await refusal(store.endSession({ sessionId: 's', endedAt: iso(T0 + 5), epoch: 1 }))
    expect(ended).toBeInstanceOf(FencedError)
    expect(ended.message).toBe('endSession: session s is owned under a newer epoch')
    expect(await store.endSession({ sessionId: 's', endedAt: iso(T0 + 5), epoch: 2 })).toBe(true)
    expect(await store.getSession('s')).toMatchObject({ status: 'ended', lastSeq: 2 })
  })
})
