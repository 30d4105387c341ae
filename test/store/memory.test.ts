/** Runs the shared store contract against the in-memory store, plus the few things only it promises. */
import { describe, expect, it } from 'vitest'
import { createMemoryStore, DEMO_PROFILES } from '../../src/store/memory.js'
import { StoreError } from '../../src/store/types.js'
import { describeStoreContract } from './contract.js'

describeStoreContract('memory', async () => ({ store: createMemoryStore() }))

describe('memory store specifics', () => {
  it('uses the injected clock for due times and leases', async () => {
    let now = Date.UTC(2030, 0, 1)
    const store = createMemoryStore({ now: () => now })
    await store.appendEvents([{ sessionId: 's', event: { type: 'connected', seq: 1, ts: new Date(now).toISOString(), connectionId: 'c' } }])
    await store.endSession({ sessionId: 's', endedAt: new Date(now + 5).toISOString() })
    const [job] = await store.claimSummaryJobs({ workerId: 'w', limit: 5, leaseMs: 1_000 })
    expect(job).toEqual({ sessionId: 's', version: 1, attempts: 1, leaseUntil: new Date(now + 1_000).toISOString() })
    now += 999
    expect(await store.claimSummaryJobs({ workerId: 'x', limit: 5, leaseMs: 1_000 })).toEqual([])
    now += 1
    expect(await store.claimSummaryJobs({ workerId: 'x', limit: 5, leaseMs: 1_000 })).toMatchObject([{ sessionId: 's', attempts: 2 }])
  })

  it('serves the given profiles instead of the demo ones', async () => {
    const store = createMemoryStore({ profiles: [{ ...DEMO_PROFILES[0], userId: 'zed' }] })
    expect((await store.getProfile('zed'))?.email).toBe(DEMO_PROFILES[0].email)
    expect(await store.getProfile('alice')).toBeNull()
  })

  it('refuses a malformed batch entirely with a non-retryable StoreError', async () => {
    const store = createMemoryStore()
    const good = { sessionId: 'ok', event: { type: 'connected' as const, seq: 1, ts: '2030-01-01T00:00:00.000Z', connectionId: 'c' } }
    const bad = { sessionId: 'bad', event: { ...good.event, seq: 0 } }
    const err = await store.appendEvents([good, bad]).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).retryable).toBe(false)
    expect(await store.getSession('ok')).toBeNull()
  })
})
