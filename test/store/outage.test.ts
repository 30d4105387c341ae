/** A real database outage (TCP proxy down/up) under the postgres store: retryable failures, no crash, recovery without a restart. */
import { Writable } from 'node:stream'
import pino from 'pino'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { EventWriter } from '../../src/store/event-writer.js'
import { createPostgresStore } from '../../src/store/postgres.js'
import { StoreError, type SessionRepository } from '../../src/store/types.js'
import { applySchema, createTcpProxy, getTestDatabaseUrl, stopTestDatabase, withPort, type TcpProxy } from '../support/postgres.js'
import { ev, Ids, TimeWindow } from './contract-helpers.js'

const logs: Array<{ level: number; msg: string }> = []
const logger = pino({ level: 'debug' }, new Writable({
  write (chunk: Buffer, _enc, done) { logs.push(JSON.parse(chunk.toString()) as { level: number; msg: string }); done() }
}))
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => { unhandled.push(reason) }

let proxy: TcpProxy
let store: SessionRepository
const ids = new Ids()

beforeAll(async () => {
  const url = await getTestDatabaseUrl()
  await applySchema(url)
  proxy = await createTcpProxy(Number(new URL(url).port || 5432), new URL(url).hostname)
  store = createPostgresStore({ connectionString: withPort(url, proxy.port), poolMax: 3, logger, connectionTimeoutMs: 1_000, queryTimeoutMs: 3_000 })
  await store.init()
  process.on('unhandledRejection', onUnhandled)
})
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  await store?.close()
  await proxy?.close()
  await stopTestDatabase()
})
beforeEach(async () => { await proxy.up() })
afterEach(() => { expect(unhandled).toEqual([]) })

async function rejection (p: Promise<unknown>): Promise<StoreError> {
  const err = await p.then(() => { throw new Error('expected a rejection') }, (e: unknown) => e)
  expect(err).toBeInstanceOf(StoreError)
  return err as StoreError
}

describe('postgres store through an outage', () => {
  it('fails with retryable StoreErrors while the database is down, and works again once it is back', async () => {
    const t = new TimeWindow()
    const id = ids.next()
    await store.appendEvents([{ sessionId: id, event: ev.user(1, t.at(0), 'turn', 'before the outage') }])
    // Warm several pooled connections so the outage kills idle clients too (the pool's 'error' path).
    await Promise.all([store.ping(), store.ping(), store.ping()])
    const acceptedBefore = proxy.accepted

    await proxy.down()
    for (const op of [
      () => store.ping(),
      () => store.appendEvents([{ sessionId: id, event: ev.assistant(2, t.at(1), 'turn', 'lost?') }]),
      () => store.getSession(id),
      () => store.claimSummaryJobs({ workerId: 'w', limit: 1, leaseMs: 1_000 })
    ]) {
      const err = await rejection(op())
      expect(err.retryable).toBe(true)
      expect(err.message).toMatch(/postgres unavailable/)
    }
    expect(logs.some((l) => l.msg === 'idle postgres connection dropped')).toBe(true)

    await proxy.up()
    // The very first call after the outage succeeds: dead clients were evicted, a new connection is made.
    await store.appendEvents([{ sessionId: id, event: ev.assistant(2, t.at(1), 'turn', 'after the outage') }])
    expect(proxy.accepted).toBeGreaterThan(acceptedBefore)
    expect((await store.listEvents(id, { after: 0, limit: 10 })).map((e) => e.type === 'assistant_message' || e.type === 'user_message' ? e.content : '')).toEqual(['before the outage', 'after the outage'])
    expect(await store.getSession(id)).toMatchObject({ lastSeq: 2, messageCount: 2, openTurnId: null })
  })

  it('a query in flight when the connection dies fails retryably instead of hanging', async () => {
    const id = ids.next()
    const t = new TimeWindow()
    const pending = store.appendEvents(Array.from({ length: 2_000 }, (_, i) => ({ sessionId: id, event: ev.connected(i + 1, t.at(i)) })))
    await proxy.down()
    const outcome = await pending.then(() => 'stored', (e: unknown) => e)
    // Either the batch made it before the cut or it failed retryably; it never hangs or half-applies.
    if (outcome !== 'stored') expect(outcome).toMatchObject({ name: 'StoreError', retryable: true })
    await proxy.up()
    const s = await store.getSession(id)
    if (outcome === 'stored') expect(s?.lastSeq).toBe(2_000)
    else expect(s === null || s.lastSeq === 2_000).toBe(true)
  })

  it('the EventWriter keeps events accepted during the outage and stores them all once the database is back', async () => {
    const writer = new EventWriter({ store, logger, batchSize: 50, flushMs: 5, maxPending: 10_000, retryMinMs: 20, retryMaxMs: 200 })
    const id = ids.next()
    const t = new TimeWindow()
    await writer.append(id, ev.connected(1, t.at(0)))
    await proxy.down()
    const durable = Array.from({ length: 120 }, (_, i) => writer.append(id, ev.connected(i + 2, t.at(i + 1))))
    // Wait until the writer has really failed against the dead database before bringing it back.
    for (const deadline = Date.now() + 5_000; writer.healthy && Date.now() < deadline;) await new Promise((r) => setImmediate(r))
    expect(writer.healthy).toBe(false)
    await proxy.up()
    await Promise.all(durable)
    expect(await writer.close(5_000)).toBe(true)
    const seqs = (await store.listEvents(id, { after: 0, limit: 500 })).map((e) => e.seq)
    expect(seqs).toEqual(Array.from({ length: 121 }, (_, i) => i + 1))
  })
})
