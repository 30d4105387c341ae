/** Sign-in over real sockets and REST with a JWKS issuer and an API key: refusals, the `auth` frame, expiry, logs (DESIGN §10). */
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startApp, TestClient, type RunningApp } from '../support/app.js'
import { deadUrl, signEs256, signHs256, startJwksIssuer, unsecuredToken, type JwksIssuer } from '../support/jwks-issuer.js'

const AUD = 'authenticated'
const API_KEY = 'svc-key-0123456789abcdef-secret'
const now = () => Math.floor(Date.now() / 1000)

let issuer: JwksIssuer
let server: RunningApp
let n = 0
const newId = () => `auth-${process.pid}-${n++}`

const authEnv = () => ({ AUTH_JWKS_URL: issuer.url, AUTH_JWKS_COOLDOWN_MS: '0', AUTH_JWT_AUDIENCE: AUD, API_KEYS: `svc:${API_KEY}` })
const token = (sub: string, expiresIn = 300) => issuer.sign({ sub, aud: AUD }, { expiresIn })
const withToken = (url: string, credential: string) => `${url}?access_token=${encodeURIComponent(credential)}`
const bearer = (credential: string) => ({ headers: { authorization: `Bearer ${credential}` } })

beforeAll(async () => {
  issuer = await startJwksIssuer()
  server = await startApp({ env: authEnv() })
})
afterAll(async () => {
  await server?.close()
  await issuer?.close()
})

/** Credentials the server must refuse; undefined = none presented. */
const refused: Array<[string, () => Promise<string | undefined>]> = [
  ['missing', async () => undefined],
  ['signed by a key not in the set', async () => signEs256({ sub: 'mallory', aud: AUD }, await issuer.newKey('stranger'))],
  ['signed by a foreign key under a published kid', async () => signEs256({ sub: 'mallory', aud: AUD }, await issuer.newKey(issuer.keys[0].kid))],
  ['expired', () => token('user-a', -5)],
  ['for another audience', () => issuer.sign({ sub: 'user-a', aud: 'anon' })],
  ['alg none', async () => unsecuredToken({ sub: 'user-a', aud: AUD, exp: now() + 300 })],
  ['HS256 against a JWKS-only server', () => signHs256({ sub: 'user-a', aud: AUD }, 'any-secret-of-at-least-32-characters!!')],
  ['a wrong API key', async () => `${API_KEY}x`],
  ['validly signed with a numeric sub', () => issuer.sign({ sub: 7 as unknown as string, aud: AUD })]
]

describe('refused credentials', () => {
  it.each(refused)('%s: the socket closes 4401 before any frame, and no session is created (query and header)', async (_what, make) => {
    const credential = await make()
    for (const via of ['query', 'header'] as const) {
      const id = newId()
      const client = credential === undefined
        ? await TestClient.connect(server.wsUrl(id))
        : via === 'query' ? await TestClient.connect(withToken(server.wsUrl(id), credential)) : await TestClient.connect(server.wsUrl(id), bearer(credential))
      const closed = await client.closed
      expect(closed.code).toBe(4401)
      expect(client.frames).toEqual([])
      expect(await server.app.services.store.getSession(id)).toBeNull()
    }
  })

  it.each(refused)('%s: REST answers 401 UNAUTHENTICATED with WWW-Authenticate: Bearer', async (_what, make) => {
    const credential = await make()
    for (const url of ['/api/session/x', '/api/sessions', '/api/me', '/api/session/x/events']) {
      const res = await server.app.inject({ url, headers: credential === undefined ? {} : { authorization: `Bearer ${credential}` } })
      expect(res.statusCode, url).toBe(401)
      expect(res.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } })
      expect(res.headers['www-authenticate']).toMatch(/^Bearer( |$)/)
    }
  })

  it('an access_token in the query does not count for REST', async () => {
    const res = await server.app.inject({ url: `/api/me?access_token=${await token('user-a')}` })
    expect(res.statusCode).toBe(401)
  })
})

describe('accepted credentials', () => {
  it.each<[string, () => Promise<{ url: (u: string) => string; opts: object; principal: string }>]>([
    ['an Authorization header', async () => { const t = await token('user-h'); return { url: (u) => u, opts: bearer(t), principal: 'user-h' } }],
    ['?access_token=', async () => { const t = await token('user-q'); return { url: (u) => withToken(u, t), opts: {}, principal: 'user-q' } }],
    ['an API key in the header', async () => ({ url: (u) => u, opts: bearer(API_KEY), principal: 'apikey:svc' })],
    ['an API key as access_token', async () => ({ url: (u) => withToken(u, API_KEY), opts: {}, principal: 'apikey:svc' })]
  ])('%s: session frame first, the session is owned by the principal, and a message gets its answer', async (_what, make) => {
    const { url, opts, principal } = await make()
    const id = newId()
    const client = await TestClient.connect(url(server.wsUrl(id)), opts)
    await client.waitFor((f) => f.type === 'connected')
    expect(client.frames.map((f) => f.type)).toEqual(['session', 'connected'])
    expect(client.frames[0]).toMatchObject({ sessionId: id, resumed: false })
    expect(await server.app.services.store.getSession(id)).toMatchObject({ id, owner: principal })
    client.send({ type: 'user_message', content: 'hello' })
    expect((await client.waitTurnEnd()).finishReason).toBe('stop')
    await client.close()
  })

  it('REST answers a valid token and an API key with the caller', async () => {
    const me = await server.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${await token('user-r')}` } })
    expect(me.statusCode).toBe(200)
    expect(me.json()).toMatchObject({ principal: 'user-r', admin: false })
    const key = await server.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${API_KEY}` } })
    expect(key.json()).toMatchObject({ principal: 'apikey:svc' })
  })
})

describe('expiry and the auth frame', () => {
  it('a socket whose token expires is closed 4401 at expiry; one that sent a fresh token stays and still chats', async () => {
    // exp is in whole seconds: it falls 4–5 s from now (room to connect both sockets on a loaded machine).
    const exp = Math.ceil((Date.now() + 4_000) / 1000)
    const short = await issuer.sign({ sub: 'user-exp', aud: AUD, exp })
    const stale = await TestClient.connect(withToken(server.wsUrl(newId()), short))
    const renewed = await TestClient.connect(withToken(server.wsUrl(newId()), short))
    await stale.waitFor((f) => f.type === 'connected')
    await renewed.waitFor((f) => f.type === 'connected')

    const from = renewed.frames.length
    renewed.send({ type: 'auth', token: await token('user-exp', 300) })
    renewed.send({ type: 'ping' })
    await renewed.waitFor((f) => f.type === 'pong', { from })
    // The server answers nothing to an accepted auth frame.
    expect(renewed.frames.slice(from).map((f) => f.type)).toEqual(['pong'])

    const closed = await stale.closed
    const closedAt = Date.now()
    expect(closed).toEqual({ code: 4401, reason: 'credential expired' })
    expect(closedAt).toBeGreaterThanOrEqual(exp * 1000 - 50)
    // At expiry, not at some later sweep (the bound leaves room for a loaded two-core machine).
    expect(closedAt).toBeLessThan(exp * 1000 + 3_000)

    const before = renewed.frames.length
    renewed.send({ type: 'user_message', content: 'still here?' })
    const done = await renewed.waitTurnEnd()
    expect(done.finishReason).toBe('stop')
    expect(renewed.frames.slice(before).map((f) => f.type)).toContain('user_message')
    expect(Date.now()).toBeGreaterThan(exp * 1000)
    expect(renewed.open).toBe(true)
    await renewed.close()
  })

  it.each<[string, () => Promise<string>, RegExp]>([
    ['another principal\'s valid token', () => token('user-b'), /another principal/],
    ['a garbage token', async () => 'garbage', /./],
    ['an expired token of the same principal', () => token('user-a', -5), /expired/],
    ['the same principal signed by a foreign key', async () => signEs256({ sub: 'user-a', aud: AUD }, await issuer.newKey('stranger-2')), /./]
  ])('an auth frame with %s closes the socket 4401', async (_what, make, reason) => {
    const client = await TestClient.connect(withToken(server.wsUrl(newId()), await token('user-a')))
    await client.waitFor((f) => f.type === 'connected')
    const from = client.frames.length
    client.send({ type: 'auth', token: await make() })
    const closed = await client.closed
    expect(closed.code).toBe(4401)
    expect(closed.reason).toMatch(reason)
    expect(client.frames.slice(from)).toEqual([])
  })

  it('an API-key socket never expires, and its auth frame may present the same key again', async () => {
    const client = await TestClient.connect(server.wsUrl(newId()), bearer(API_KEY))
    await client.waitFor((f) => f.type === 'connected')
    const from = client.frames.length
    client.send({ type: 'auth', token: API_KEY })
    client.send({ type: 'ping' })
    await client.waitFor((f) => f.type === 'pong', { from })
    expect(client.frames.slice(from).map((f) => f.type)).toEqual(['pong'])
    await client.close()
  })

  it('with auth off, an auth frame gets error bad_request and the socket stays', async () => {
    const open = await startApp()
    try {
      const client = await TestClient.connect(open.wsUrl(newId()))
      await client.waitFor((f) => f.type === 'connected')
      const from = client.frames.length
      client.send({ type: 'auth', token: 'whatever' })
      client.send({ type: 'ping' })
      await client.waitFor((f) => f.type === 'pong', { from })
      expect(client.frames.slice(from).map((f) => (f.type === 'error' ? `error:${f.code}` : f.type))).toEqual(['error:bad_request', 'pong'])
      expect(client.open).toBe(true)
      await client.close()
    } finally {
      await open.close()
    }
  })
})

describe('JWKS endpoint down', () => {
  it('a socket is closed 1013 (try again later), not 4401; REST answers 503', async () => {
    const down = await startApp({ env: { ...authEnv(), AUTH_JWKS_URL: await deadUrl() } })
    try {
      const id = 'jwks-down'
      const client = await TestClient.connect(withToken(down.wsUrl(id), await token('user-a')))
      expect((await client.closed).code).toBe(1013)
      expect(client.frames).toEqual([])
      expect(await down.app.services.store.getSession(id)).toBeNull()
      const res = await down.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${await token('user-a')}` } })
      expect(res.statusCode).toBe(503)
      expect(res.json()).toMatchObject({ error: { code: 'AUTH_UNAVAILABLE' } })
      // An API key needs no keys from anywhere.
      const key = await TestClient.connect(down.wsUrl('jwks-down-key'), bearer(API_KEY))
      await key.waitFor((f) => f.type === 'connected')
      await key.close()
    } finally {
      await down.close()
    }
  })
})

describe('log redaction', () => {
  it('no log line carries a token or the API key, whether accepted, refused, in the query, a header or an auth frame', async () => {
    const lines: string[] = []
    const stream = new Writable({ write (chunk, _enc, done) { lines.push(String(chunk)); done() } })
    const logged = await startApp({ env: { ...authEnv(), LOG_LEVEL: 'trace' }, logger: { level: 'trace', stream } })
    const secrets: string[] = [API_KEY]
    const remember = (t: string) => { secrets.push(t, t.split('.')[2] ?? t); return t }
    try {
      // Accepted: query token, header token, API key in the query; a turn on each so the session logs.
      const viaQuery = await TestClient.connect(withToken(logged.wsUrl(newId()), remember(await token('user-log'))))
      const viaHeader = await TestClient.connect(logged.wsUrl(newId()), bearer(remember(await token('user-log'))))
      const viaKey = await TestClient.connect(withToken(logged.wsUrl(newId()), API_KEY))
      for (const c of [viaQuery, viaHeader, viaKey]) {
        await c.waitFor((f) => f.type === 'connected')
        c.send({ type: 'user_message', content: 'hello' })
        await c.waitTurnEnd()
      }
      // The parameter name percent-encoded: the query parser decodes it (the credential counts), so the log must hide it too.
      for (const name of ['access%5Ftoken', '%61ccess_token', 'ACCESS_TOKEN']) {
        const t = remember(await token('user-log'))
        const c = await TestClient.connect(`${logged.wsUrl(newId())}?after=0&${name}=${t}`)
        if (name === 'ACCESS_TOKEN') expect((await c.closed).code).toBe(4401)
        else { await c.waitFor((f) => f.type === 'connected'); await c.close() }
      }
      // The auth frame: accepted, then one for another principal (refused).
      viaQuery.send({ type: 'auth', token: remember(await token('user-log')) })
      viaQuery.send({ type: 'ping' })
      await viaQuery.waitFor((f) => f.type === 'pong')
      viaQuery.send({ type: 'auth', token: remember(await token('someone-else')) })
      expect((await viaQuery.closed).code).toBe(4401)
      // Refused sockets: a bad token in the query, a wrong API key in the header.
      const bad = await TestClient.connect(withToken(logged.wsUrl(newId()), remember(await signEs256({ sub: 'x', aud: AUD }, await issuer.newKey('log-stranger')))))
      expect((await bad.closed).code).toBe(4401)
      const wrongKey = `${API_KEY}-wrong`
      secrets.push(wrongKey)
      const badKey = await TestClient.connect(logged.wsUrl(newId()), bearer(wrongKey))
      expect((await badKey.closed).code).toBe(4401)
      // REST with Authorization: a token, the key, a bad token; and a stray access_token in a REST query.
      const restToken = remember(await token('user-log'))
      for (const [url, credential, status] of [['/api/me', restToken, 200], ['/api/sessions', API_KEY, 200], ['/api/me', wrongKey, 401], [`/api/me?access_token=${restToken}`, undefined, 401]] as const) {
        const res = await fetch(`${logged.baseUrl}${url}`, { headers: credential ? { authorization: `Bearer ${credential}` } : {} })
        expect(res.status).toBe(status)
      }
      await viaHeader.close()
      await viaKey.close()
    } finally {
      await logged.close()
    }
    const all = lines.join('')
    // The lines that would carry a credential were written: the test sees them, redacted.
    expect(all).toContain('socket refused: not authenticated')
    expect(all).toContain('auth frame for another principal')
    expect(all).toContain('access_token=[redacted]')
    expect(all).toContain('"url":"/api/me"')
    for (const secret of secrets) {
      expect(lines.filter((l) => l.includes(secret)), `a line contains ${secret.slice(0, 12)}…`).toEqual([])
    }
  })
})
