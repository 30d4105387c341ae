/** The store contract on a real Postgres (TEST_DATABASE_URL or embedded PGlite), plus what only the postgres store promises. */
import pino from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { createPostgresStore } from '../../src/store/postgres.js'
import { StoreError, type SessionRepository } from '../../src/store/types.js'
import { applySchema, closedPort, createScratchDatabase, getTestDatabaseUrl, stopTestDatabase } from '../support/postgres.js'
import { describeStoreContract } from './contract.js'
import { ev, Ids, TimeWindow } from './contract-helpers.js'

const logger = pino({ level: 'silent' })

async function openStore (connectionString?: string): Promise<SessionRepository> {
  const url = connectionString ?? await getTestDatabaseUrl()
  if (connectionString === undefined) await applySchema(url)
  return createPostgresStore({ connectionString: url, poolMax: 4, logger, connectionTimeoutMs: 2_000 })
}


async function rejection (p: Promise<unknown>): Promise<StoreError> {
  const err = await p.then(() => { throw new Error('expected a rejection') }, (e: unknown) => e)
  expect(err).toBeInstanceOf(StoreError)
  return err as StoreError
}

afterAll(stopTestDatabase)

describeStoreContract('postgres', async () => {
  const store = await openStore()
  return { store, teardown: () => store.close() }
})

describe('postgres store specifics', () => {
  const ids = new Ids()

  it('init() on a database without the schema says how to apply it (not retryable)', async () => {
    const scratch = await createScratchDatabase()
    const store = await openStore(scratch.url)
    try {
      const err = await rejection(store.init())
      expect(err.retryable).toBe(false)
      expect(err.message).toContain('schema missing')
      expect(err.message).toContain('psql -v ON_ERROR_STOP=1 -f supabase-schema.sql')
      expect((err.cause as { code?: string }).code).toBe('42883')
    } finally {
      await store.close()
      await scratch.drop()
    }
  })

  it('maps a refused connection to a retryable StoreError', async () => {
    const store = await openStore(`postgres://postgres@127.0.0.1:${await closedPort()}/postgres`)
    try {
      const err = await rejection(store.ping())
      expect(err.retryable).toBe(true)
      expect(err.message).toContain('ECONNREFUSED')
      const append = await rejection(store.appendEvents([{ sessionId: ids.next(), event: ev.connected(1, new TimeWindow().at(0)) }]))
      expect(append.retryable).toBe(true)
    } finally {
      await store.close()
    }
  })

  it('maps SQL errors to non-retryable StoreErrors carrying the SQLSTATE, and stores nothing of a refused batch', async () => {
    const store = await openStore()
    try {
      const id = ids.next()
      const t = new TimeWindow()
      const bad = await rejection(store.appendEvents([
        { sessionId: id, event: ev.connected(1, t.at(0)) },
        { sessionId: id, event: ev.connected(0, t.at(1)) }
      ]))
      expect(bad.retryable).toBe(false)
      expect(bad.message).toContain('23514') // check (seq > 0)
      expect(await store.getSession(id)).toBeNull()
      const badTs = await rejection(store.appendEvents([{ sessionId: id, event: ev.connected(1, 'not a time') }]))
      expect(badTs.retryable).toBe(false)
      expect(badTs.message).toMatch(/22007|22008/)
      const noId = await rejection(store.appendEvents([{ sessionId: '', event: ev.connected(1, t.at(0)) }]))
      expect(noId.message).toContain('22023')
    } finally {
      await store.close()
    }
  })

  it('stores a NUL character (which jsonb cannot hold) as U+FFFD instead of failing the batch forever', async () => {
    const store = await openStore()
    try {
      const id = ids.next()
      await store.appendEvents([{ sessionId: id, event: ev.user(1, new TimeWindow().at(0), 't', 'a\u0000b') }])
      const [e] = await store.listEvents(id, { after: 0, limit: 1 })
      expect(e).toMatchObject({ type: 'user_message', content: 'a\uFFFDb' })
      expect((await store.getSession(id))!.title).toBe('a\uFFFDb')
    } finally {
      await store.close()
    }
  })

  it('stores lone UTF-16 surrogates (a cut pair from a model; jsonb refuses "\\ud800") as U+FFFD, keeping whole pairs', async () => {
    const store = await openStore()
    try {
      const id = ids.next()
      const t = new TimeWindow()
      // Before the fix the whole batch failed (22P02: "Unicode low surrogate must follow a high surrogate") and was dropped after retries: a seq gap.
      await store.appendEvents([
        { sessionId: id, event: ev.user(1, t.at(0), 't', 'hi \ud800 there') },
        { sessionId: id, event: ev.assistant(2, t.at(1), 't', 'cut \udc00, pair \ud83d\ude00, end \ud83d') }
      ])
      const events = await store.listEvents(id, { after: 0, limit: 10 })
      expect(events.map((e) => e.seq)).toEqual([1, 2])
      expect(events[0]).toMatchObject({ content: 'hi \uFFFD there' })
      expect(events[1]).toMatchObject({ content: 'cut \uFFFD, pair \ud83d\ude00, end \uFFFD' })
      // A tool call's arguments are the model's JSON, keys included: a bad key must not fail the batch either.
      const call = { type: 'tool_call', seq: 3, ts: t.at(2), turnId: 't', callId: 'c1', name: 'fetch_user_profile', arguments: { '\ud800': 1, 'a\u0000': { 'b\udc00': 'x\ud800' } } } as const
      await store.appendEvents([{ sessionId: id, event: call }])
      const [stored] = await store.listEvents(id, { after: 2, limit: 1 })
      expect(stored).toMatchObject({ seq: 3, arguments: { '\uFFFD': 1, 'a\uFFFD': { 'b\uFFFD': 'x\uFFFD' } } })
    } finally {
      await store.close()
    }
  })

  it('derives openTurnId from the log, so batches stored out of order leave the right turn open', async () => {
    const store = await openStore()
    try {
      const id = ids.next()
      const t = new TimeWindow()
      // A retry stores the later batch first: the answer to t1 arrives before its question.
      await store.appendEvents([{ sessionId: id, event: ev.assistant(3, t.at(3), 't1', 'answer') }])
      await store.appendEvents([{ sessionId: id, event: ev.connected(1, t.at(0)) }, { sessionId: id, event: ev.user(2, t.at(2), 't1', 'question') }])
      expect(await store.getSession(id)).toMatchObject({ openTurnId: null, messageCount: 2, lastSeq: 3, title: 'question' })
      expect(Date.parse((await store.getSession(id))!.startedAt)).toBe(Date.parse(t.at(3))) // the row was created by the first batch seen
      await store.appendEvents([{ sessionId: id, event: ev.user(4, t.at(4), 't2', 'next') }])
      expect((await store.getSession(id))!.openTurnId).toBe('t2')
    } finally {
      await store.close()
    }
  })

  it('refuses calls after close() without touching the pool, and close() is idempotent', async () => {
    const store = await openStore()
    await store.ping()
    await store.close()
    await store.close()
    const err = await rejection(store.ping())
    expect(err.retryable).toBe(false)
    expect(err.message).toContain('closed')
  })
})
