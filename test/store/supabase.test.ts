/** The store contract through supabase-js against the PostgREST stand-in on a real Postgres, plus the supabase store's own mappings. */
import { randomBytes } from 'node:crypto'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSupabaseStore, type SupabaseErrorCause } from '../../src/store/supabase.js'
import { StoreError, type SessionRepository } from '../../src/store/types.js'
import { applySchema, closedPort, createScratchDatabase, getTestDatabaseUrl, stopTestDatabase } from '../support/postgres.js'
import { startPostgrestStandIn, type PostgrestStandIn } from '../support/postgrest-stand-in.js'
import { describeStoreContract } from './contract.js'
import { ev, Ids, TimeWindow } from './contract-helpers.js'

const logger = pino({ level: 'silent' })
const serviceKey = `service-${randomBytes(8).toString('hex')}`

async function rejection (p: Promise<unknown>): Promise<StoreError> {
  const err = await p.then(() => { throw new Error('expected a rejection') }, (e: unknown) => e)
  expect(err).toBeInstanceOf(StoreError)
  return err as StoreError
}


let standIn: PostgrestStandIn

beforeAll(async () => {
  const databaseUrl = await getTestDatabaseUrl()
  await applySchema(databaseUrl)
  standIn = await startPostgrestStandIn({ databaseUrl, serviceKey })
})
afterAll(async () => {
  await standIn?.close()
  await stopTestDatabase()
})

describeStoreContract('supabase', async () => {
  const store = createSupabaseStore({ url: standIn.url, serviceRoleKey: serviceKey, logger })
  return { store, teardown: () => store.close() }
})

describe('supabase store specifics', () => {
  const ids = new Ids()
  let store: SessionRepository
  beforeAll(() => { store = createSupabaseStore({ url: standIn.url, serviceRoleKey: serviceKey, logger }) })
  afterAll(async () => { await store.close() })

  it('calls POST /rest/v1/rpc/<fn> with the service key, the public profile and named arguments', async () => {
    const id = ids.next()
    const t = new TimeWindow()
    const from = standIn.requests.length
    await store.appendEvents([{ sessionId: id, event: ev.user(1, t.at(0), 'turn', 'hello') }])
    const [req] = standIn.requests.slice(from)
    expect(req.fn).toBe('rtb_append_events')
    expect(req.status).toBe(200)
    expect(req.headers.apikey).toBe(serviceKey)
    expect(req.headers.authorization).toBe(`Bearer ${serviceKey}`)
    expect(req.headers['content-profile']).toBe('public')
    expect(req.body).toEqual({
      p_events: [{ session_id: id, seq: 1, type: 'user_message', turn_id: 'turn', created_at: t.at(0), payload: ev.user(1, t.at(0), 'turn', 'hello') }]
    })
    expect(await store.getSession(id)).toMatchObject({ id, title: 'hello', openTurnId: 'turn' })
  })

  it('stores a lone UTF-16 surrogate as U+FFFD through PostgREST instead of failing the batch', async () => {
    const id = ids.next()
    const t = new TimeWindow()
    await store.appendEvents([{ sessionId: id, event: ev.assistant(1, t.at(0), 't', 'a \ud800 b \ud83d\ude00') }])
    const [e] = await store.listEvents(id, { after: 0, limit: 1 })
    expect(e).toMatchObject({ seq: 1, content: 'a \uFFFD b \ud83d\ude00' })
  })

  it('init() says to run supabase-schema.sql when the function is missing (PGRST202), not retryable', async () => {
    const scratch = await createScratchDatabase()
    const bare = await startPostgrestStandIn({ databaseUrl: scratch.url, serviceKey })
    const s = createSupabaseStore({ url: bare.url, serviceRoleKey: serviceKey, logger })
    try {
      const err = await rejection(s.init())
      expect(err.retryable).toBe(false)
      expect(err.message).toContain('schema missing')
      expect(err.message).toContain('supabase-schema.sql')
      expect(err.message).toContain('SQL editor')
      expect(err.cause).toMatchObject({ code: 'PGRST202', status: 404 })
    } finally {
      await s.close()
      await bare.close()
      await scratch.drop()
    }
  })

  it('a wrong key fails init() with a 401 that names the key, not retryable', async () => {
    const s = createSupabaseStore({ url: standIn.url, serviceRoleKey: 'not-the-key', logger })
    const err = await rejection(s.init())
    expect(err.retryable).toBe(false)
    expect(err.message).toContain('SUPABASE_SERVICE_ROLE_KEY')
    expect((err.cause as SupabaseErrorCause).status).toBe(401)
    await s.close()
  })

  it('maps an unreachable API (fetch failed, status 0) to a retryable StoreError', async () => {
    const s = createSupabaseStore({ url: `http://127.0.0.1:${await closedPort()}`, serviceRoleKey: serviceKey, logger })
    const err = await rejection(s.ping())
    expect(err.retryable).toBe(true)
    expect((err.cause as SupabaseErrorCause).status).toBe(0)
    expect(err.message).toMatch(/fetch failed/i)
    await s.close()
  })

  it('maps PostgREST answering 503 (database down) to a retryable StoreError with the PGRST code kept', async () => {
    const dbDown = await startPostgrestStandIn({ databaseUrl: `postgres://postgres@127.0.0.1:${await closedPort()}/postgres`, serviceKey })
    const s = createSupabaseStore({ url: dbDown.url, serviceRoleKey: serviceKey, logger })
    try {
      const err = await rejection(s.appendEvents([{ sessionId: ids.next(), event: ev.connected(1, new TimeWindow().at(0)) }]))
      expect(err.retryable).toBe(true)
      expect(err.cause).toMatchObject({ code: 'PGRST000', status: 503 })
    } finally {
      await s.close()
      await dbDown.close()
    }
  })

  it('maps SQL errors (HTTP 400) to non-retryable StoreErrors keeping code, details and hint', async () => {
    const id = ids.next()
    const err = await rejection(store.appendEvents([{ sessionId: id, event: ev.connected(0, new TimeWindow().at(0)) }]))
    expect(err.retryable).toBe(false)
    expect(err.message).toContain('23514')
    expect(err.cause).toMatchObject({ code: '23514', status: 400 })
    expect(err.cause).toHaveProperty('details')
    expect(err.cause).toHaveProperty('hint')
    expect(await store.getSession(id)).toBeNull()
  })
})
