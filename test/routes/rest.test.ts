/** REST contract: /health, /api/session/:id(+events), /api/sessions, /docs and /protocol.json, one error shape. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually, startApp, TestClient, type RunningApp } from '../support/app.js'

let server: RunningApp
const get = async (url: string) => server.app.inject({ url })

beforeAll(async () => { server = await startApp({ env: { DISCONNECT_GRACE_MS: '600000' } }) })
afterAll(async () => { await server.close() })

describe('REST', () => {
  it('GET /health reports status, model, store and live sessions', async () => {
    const res = await get('/health')
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({
      status: 'ok', version: '0.1.0', model: { provider: 'offline', name: 'offline-demo', offline: true },
      store: { kind: 'memory', ok: true, pendingWrites: 0 }, sessions: { live: 0 }
    })
    expect(res.headers['content-security-policy']).toContain("script-src 'self'")
  })

  it('answers unknown sessions 404 and bad ids 400, both in the one error shape', async () => {
    const missing = await get('/api/session/nobody-here')
    expect(missing.statusCode).toBe(404)
    expect(missing.json()).toEqual({ error: { code: 'SESSION_NOT_FOUND', message: 'Session nobody-here not found' } })
    const bad = await get('/api/session/bad%20id')
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error.code).toBe('BAD_REQUEST')
    expect((await get('/api/session/nobody-here/events')).statusCode).toBe(404)
    expect((await get('/api/session/x/events?limit=0')).statusCode).toBe(400)
    expect((await get('/api/sessions?before=yesterday')).statusCode).toBe(400)
    expect((await get(`/api/sessions?before=${encodeURIComponent('2026-01-01T00:00:00.000Z~bad id')}`)).statusCode).toBe(400)
    for (const impossible of ['2026-13-01T00:00:00.000Z~abc', '2026-02-30T00:00:00.000Z~abc', '2026-13-01T00:00:00Z']) {
      const res = await get(`/api/sessions?before=${encodeURIComponent(impossible)}`)
      expect(res.statusCode, impossible).toBe(400)
      expect(res.json().error.code).toBe('BAD_REQUEST')
    }
    // Beyond a 32-bit seq, or a year the SQL stores cannot hold: 400 on every store (Postgres used to answer 503).
    for (const url of ['/api/session/x/events?after=2147483648', '/api/session/x/events?after=1e400', '/api/session/x/events?limit=1e400',
      '/api/sessions?limit=-1e400',
      `/api/sessions?before=${encodeURIComponent('0000-01-01T00:00:00.000Z~abc')}`, '/api/sessions?before=0000-06-01T00:00:00Z']) {
      const res = await get(url)
      expect(res.statusCode, url).toBe(400)
      expect(res.json().error.code, url).toBe('BAD_REQUEST')
    }
    expect((await get('/api/session/x/events?after=2147483647')).json()).toEqual({ events: [], nextAfter: null })
    // A URL that does not decode is refused by Fastify before routing: still the one error shape.
    const undecodable = await get('/api/session/%ZZ')
    expect(undecodable.statusCode).toBe(400)
    expect(Object.keys(undecodable.json())).toEqual(['error'])
    expect(undecodable.json().error.code).toBe('BAD_REQUEST')
    expect(undecodable.headers['x-content-type-options']).toBe('nosniff')
    expect(undecodable.headers['content-security-policy']).toBe("default-src 'none'")
    const route = await get('/no/such/route')
    expect(route.statusCode).toBe(404)
    expect(route.json().error.code).toBe('NOT_FOUND')
  })

  it('pages through the event log and lists recent sessions newest first', async () => {
    const ids = ['rest-a', 'rest-b']
    for (const id of ids) {
      const client = await TestClient.connect(server.wsUrl(id))
      client.send({ type: 'user_message', content: `hello from ${id}` })
      await client.waitTurnEnd()
      await client.close()
    }
    await eventually(async () => (await get('/api/session/rest-b')).json().lastSeq === 4)
    const record = (await get('/api/session/rest-a')).json()
    expect(record).toMatchObject({ id: 'rest-a', status: 'active', messageCount: 2, lastSeq: 4, title: 'hello from rest-a', summaryStatus: 'none' })
    expect(Object.keys(record).sort()).toEqual(['durationMs', 'endedAt', 'id', 'lastSeq', 'messageCount', 'owner', 'startedAt', 'status', 'summary', 'summaryError', 'summaryStatus', 'title'])

    const page1 = (await get('/api/session/rest-a/events?limit=3')).json()
    expect(page1.events.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 3])
    expect(page1.events.map((e: { type: string }) => e.type)).toEqual(['connected', 'user_message', 'assistant_message'])
    expect(page1.nextAfter).toBe(3)
    const page2 = (await get(`/api/session/rest-a/events?after=${page1.nextAfter}&limit=3`)).json()
    expect(page2).toMatchObject({ events: [{ seq: 4, type: 'disconnected' }], nextAfter: null })

    const list = (await get('/api/sessions?limit=1')).json()
    expect(list.sessions.map((s: { id: string }) => s.id)).toEqual(['rest-b'])
    const next = (await get(`/api/sessions?limit=1&before=${encodeURIComponent(list.nextBefore)}`)).json()
    expect(next.sessions.map((s: { id: string }) => s.id)).toEqual(['rest-a'])
  })

  it('GET /api/sessions pages with nextBefore through sessions that started in the same millisecond, each once', async () => {
    const ts = '2001-02-03T04:05:06.789Z'
    const tied = ['tie-c', 'tie-a', 'tie-b']
    await server.app.services.store.appendEvents(tied.map((sessionId) => ({ sessionId, event: { type: 'connected' as const, seq: 1, ts, connectionId: 'c' } })))
    const seen: string[] = []
    let before = encodeURIComponent('2001-02-03T04:05:06.790Z')
    for (let page = 0; page < 5; page++) {
      const body = (await get(`/api/sessions?limit=1&before=${before}`)).json()
      seen.push(...body.sessions.map((s: { id: string }) => s.id))
      if (body.nextBefore === null) break
      expect(body.nextBefore).toBe(`${ts}~${body.sessions[0].id}`)
      before = encodeURIComponent(body.nextBefore)
    }
    expect(seen.slice(0, 3)).toEqual(['tie-c', 'tie-b', 'tie-a'])
    // A bare time still works: the sessions that started before it.
    const older = (await get(`/api/sessions?before=${encodeURIComponent(ts)}`)).json()
    expect(older.sessions.map((s: { id: string }) => s.id)).not.toContain('tie-a')
  })

  it('publishes OpenAPI at /docs and the WebSocket protocol as JSON Schema at /protocol.json', async () => {
    const ui = await get('/docs')
    expect([200, 302]).toContain(ui.statusCode)
    const spec = (await get('/docs/json')).json()
    expect(Object.keys(spec.paths).sort()).toEqual(['/api/me', '/api/session/{id}', '/api/session/{id}/events', '/api/sessions', '/auth/config', '/health', '/health/live', '/health/ready', '/metrics', '/protocol.json'])
    for (const path of ['/api/session/{id}', '/api/session/{id}/events', '/api/sessions', '/health']) {
      expect(Object.keys(spec.paths[path].get.responses), path).toContain('429')
    }
    const protocol = (await get('/protocol.json')).json()
    expect(protocol).toMatchObject({ version: 1, closeCodes: { tooLarge: 1009, restarting: 1012, tooSlow: 4408 } })
    const clientTypes = protocol.clientFrame.oneOf.map((s: { properties: { type: { const: string } } }) => s.properties.type.const).sort()
    expect(clientTypes).toEqual(['auth', 'cancel', 'ping', 'tool_approval', 'user_message'])
    const stored = protocol.storedEvent.oneOf.map((s: { properties: { type: { const: string } } }) => s.properties.type.const).sort()
    expect(stored).toEqual(['approval', 'approval_request', 'assistant_message', 'connected', 'disconnected', 'error', 'tool_call', 'tool_result', 'user_message'])
    const server = JSON.stringify(protocol.serverFrame)
    for (const part of ['"reasoning"', '"pendingApprovals"', '"not_pending"']) expect(server).toContain(part)
  })

  it('rate limits REST per client with 429, retry-after and the one error shape', async () => {
    const limited = await startApp({ env: { RATE_HTTP_PER_MIN: '2' } })
    try {
      const codes = []
      for (let i = 0; i < 3; i++) codes.push((await limited.app.inject({ url: '/api/sessions' })).statusCode)
      expect(codes).toEqual([200, 200, 429])
      const res = await limited.app.inject({ url: '/api/sessions' })
      expect(res.statusCode).toBe(429)
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
      expect(res.json()).toEqual({ error: { code: 'RATE_LIMITED', message: expect.stringMatching(/rate limit/i) } })
    } finally {
      await limited.close()
    }
  })
})
