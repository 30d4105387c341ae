/** /health/live, /health/ready (starting → ready), /health hiding internals from anonymous callers, and x-request-id. */
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../../src/config.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { ADMIN_KEY, authEnv, newUser } from '../support/auth.js'
import { eventually } from '../support/app.js'

const DB_ERROR = 'connect ECONNREFUSED db.internal.example:5432'

/** A memory store whose ping fails with a message naming the database host. */
function failingPingStore () {
  const store = createMemoryStore()
  store.ping = async () => { throw new Error(DB_ERROR) }
  return store
}

describe('health probes', () => {
  it('answers live at once, and ready only once recovery of the previous run is done', async () => {
    const store = createMemoryStore()
    let release!: () => void
    const held = new Promise<void>((resolve) => { release = resolve })
    const listSessions = store.listSessions.bind(store)
    store.listSessions = async (q) => { await held; return await listSessions(q) }
    const app = await buildApp({ config: testConfig(), deps: { store } })
    try {
      await app.ready()
      expect((await app.inject({ url: '/health/live' })).json()).toEqual({ status: 'live' })
      const before = await app.inject({ url: '/health/ready' })
      expect(before.statusCode).toBe(503)
      expect(before.json()).toEqual({ status: 'starting' })
      release()
      await eventually(async () => (await app.inject({ url: '/health/ready' })).statusCode === 200)
      expect((await app.inject({ url: '/health/ready' })).json()).toEqual({ status: 'ready' })
      app.services.readiness.drain()
      const draining = await app.inject({ url: '/health/ready' })
      expect(draining.statusCode).toBe(503)
      expect(draining.json()).toEqual({ status: 'draining' })
      expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200)
    } finally {
      await app.close()
    }
  })

  it('tells a non-loopback caller nothing internal; loopback, METRICS_TOKEN and admins get the store error', async () => {
    const config = testConfig(authEnv({ METRICS_TOKEN: 'm'.repeat(24) }))
    const app = await buildApp({ config, deps: { store: failingPingStore() } })
    try {
      const remote = { remoteAddress: '203.0.113.7' }
      const anonymous = (await app.inject({ url: '/health', ...remote })).json()
      expect(anonymous).toMatchObject({ status: 'degraded', store: { ok: false } })
      expect(JSON.stringify(anonymous)).not.toContain('db.internal')
      expect(anonymous.store.error).toBeUndefined()

      const { token: user } = await newUser('someone')
      const asUser = (await app.inject({ url: '/health', headers: { authorization: `Bearer ${user}` }, ...remote })).json()
      expect(asUser.store.error).toBeUndefined()

      const local = (await app.inject({ url: '/health' })).json()
      expect(local.store.error).toBe(DB_ERROR)
      const withToken = (await app.inject({ url: '/health', headers: { authorization: `Bearer ${'m'.repeat(24)}` }, ...remote })).json()
      expect(withToken.store.error).toBe(DB_ERROR)
      const asAdmin = (await app.inject({ url: '/health', headers: { authorization: `Bearer ${ADMIN_KEY}` }, ...remote })).json()
      expect(asAdmin.store.error).toBe(DB_ERROR)
    } finally {
      await app.close()
    }
  })
})

describe('REST request ids and access lines', () => {
  it('returns a well-formed x-request-id as given, replaces a malformed one with a UUID, and logs one access line per request', async () => {
    const lines: Array<Record<string, unknown>> = []
    const stream = new Writable({ write (chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); done() } })
    const app = await buildApp({ config: testConfig({ LOG_LEVEL: 'info' }), logger: { level: 'info', stream } })
    try {
      const given = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'lb-7f3a:12.9_x' }, remoteAddress: '198.51.100.4' })
      expect(given.headers['x-request-id']).toBe('lb-7f3a:12.9_x')
      const bad = await app.inject({ url: '/api/session/nope-1', headers: { 'x-request-id': 'has spaces and {json}' } })
      expect(bad.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      const none1 = await app.inject({ url: '/health/live' })
      const none2 = await app.inject({ url: '/health/live' })
      expect(none1.headers['x-request-id']).not.toBe(none2.headers['x-request-id'])
      expect(String(none1.headers['x-request-id']).length).toBe(36)
      const tooLong = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'a'.repeat(129) } })
      expect(tooLong.headers['x-request-id']).not.toBe('a'.repeat(129))

      const access = lines.filter((l) => l.msg === 'request done')
      expect(access).toHaveLength(5)
      expect(access[0]).toMatchObject({ level: 30, reqId: 'lb-7f3a:12.9_x', method: 'GET', route: '/health/live', status: 200, client: '198.51.100.4' })
      expect(typeof access[0].ms).toBe('number')
      expect(access[1]).toMatchObject({ reqId: bad.headers['x-request-id'], route: '/api/session/:id', status: 404, client: '127.0.0.1' })
    } finally {
      await app.close()
    }
  })
})
