/** Per client address and whole-server socket/session limits, from real sockets on several loopback addresses. */
import { afterAll, describe, expect, it } from 'vitest'
import { eventually, startApp, TestClient, type RunningApp } from '../support/app.js'

let n = 0
const newId = () => `addr-${process.pid}-${n++}`
const apps: RunningApp[] = []
async function app (env: Record<string, string>): Promise<RunningApp> {
  const server = await startApp({ env: { DISCONNECT_GRACE_MS: '600000', ...env } })
  apps.push(server)
  return server
}
afterAll(async () => { await Promise.all(apps.map((a) => a.close())) })

/** A socket from a given loopback address (the whole 127/8 is loopback on Linux), optionally with X-Forwarded-For. */
const from = (server: RunningApp, localAddress: string, id = newId(), forwardedFor?: string) =>
  TestClient.connect(server.wsUrl(id), { localAddress, ...(forwardedFor ? { headers: { 'x-forwarded-for': forwardedFor } } : {}) })
const joined = (c: TestClient) => c.waitFor((f) => f.type === 'connected')
async function refused (c: TestClient): Promise<{ code: number; frames: Array<Record<string, unknown>> }> {
  const { code } = await c.closed
  return { code, frames: c.frames }
}

describe('MAX_SOCKETS_PER_IP', () => {
  it('the first N sockets of an address pass, the next gets too_many_sockets + 1013, other addresses are untouched, a freed one is taken again', async () => {
    const server = await app({ MAX_SOCKETS_PER_IP: '3' })
    const held = await Promise.all([0, 1, 2].map(() => from(server, '127.0.0.2')))
    await Promise.all(held.map(joined))
    const over = await from(server, '127.0.0.2')
    expect(await refused(over)).toMatchObject({ code: 1013, frames: [{ type: 'error', code: 'too_many_sockets' }] })
    expect(server.app.services.addressSockets.held('127.0.0.2')).toBe(3)
    // Other addresses: their own count.
    const others = await Promise.all([from(server, '127.0.0.3'), from(server, '127.0.0.4')])
    await Promise.all(others.map(joined))
    await held[0].close()
    await eventually(() => server.app.services.addressSockets.held('127.0.0.2') === 2)
    const again = await from(server, '127.0.0.2')
    await joined(again)
    await Promise.all([...held.slice(1), ...others, again].map((c) => c.close()))
    await eventually(() => server.app.services.addressSockets.held('127.0.0.2') === 0)
    expect(server.app.services.serverSockets.held('')).toBe(0)
  })
})

describe('MAX_NEW_SESSIONS_PER_IP_PER_MIN', () => {
  it('an address brings N sessions to life a minute; the next gets rate_limited + retryAfterMs + 1013; joining a live session and other addresses pass', async () => {
    const server = await app({ MAX_NEW_SESSIONS_PER_IP_PER_MIN: '2' })
    const ids = [newId(), newId()]
    const first = await Promise.all(ids.map((id) => from(server, '127.0.0.5', id)))
    await Promise.all(first.map(joined))
    const over = await from(server, '127.0.0.5')
    const { code, frames } = await refused(over)
    expect(code).toBe(1013)
    expect(frames).toEqual([expect.objectContaining({ type: 'error', code: 'rate_limited', retryable: true })])
    expect(frames[0].retryAfterMs).toBeGreaterThan(0)
    expect(frames[0].retryAfterMs).toBeLessThanOrEqual(60_000)
    // Refused before anything of it was stored.
    expect(server.app.services.hub.liveCount).toBe(2)
    // A second socket on a session that is already live is not a new session.
    const second = await from(server, '127.0.0.5', ids[0])
    await joined(second)
    const other = await from(server, '127.0.0.6')
    await joined(other)
    await Promise.all([...first, second, other].map((c) => c.close()))
  })
})

describe('RATE_MESSAGES_PER_MIN_PER_IP', () => {
  it('counts an address across its sessions: the message over it gets rate_limited + retryAfterMs and is not run; another address is not charged', async () => {
    const server = await app({ RATE_MESSAGES_PER_MIN_PER_IP: '2' })
    const a = await from(server, '127.0.0.7')
    const b = await from(server, '127.0.0.7')
    await Promise.all([joined(a), joined(b)])
    a.send({ type: 'user_message', content: 'one' })
    await a.waitTurnEnd()
    b.send({ type: 'user_message', content: 'two' })
    await b.waitTurnEnd()
    a.send({ type: 'user_message', content: 'three' })
    const err = await a.waitFor((f) => f.type === 'error')
    expect(err).toMatchObject({ code: 'rate_limited', retryable: true })
    expect(err.retryAfterMs).toBeGreaterThan(0)
    expect(err.retryAfterMs).toBeLessThanOrEqual(60_000)
    expect(a.ofType('user_message')).toHaveLength(1)
    const c = await from(server, '127.0.0.8')
    await joined(c)
    c.send({ type: 'user_message', content: 'elsewhere' })
    expect((await c.waitTurnEnd()).finishReason).toBe('stop')
    expect(c.ofType('error')).toEqual([])
    await Promise.all([a, b, c].map((x) => x.close()))
  })
})

describe('TRUST_PROXY with a list of proxies', () => {
  it('a trusted proxy\'s X-Forwarded-For is the client address; anyone else\'s is ignored, rotating it changes nothing', async () => {
    const server = await app({ MAX_SOCKETS_PER_IP: '2', TRUST_PROXY: '127.0.0.9' })
    const { addressSockets } = server.app.services
    // Through the trusted proxy: two clients behind it, each with its own count.
    const behind = await Promise.all([from(server, '127.0.0.9', newId(), '10.0.0.1'), from(server, '127.0.0.9', newId(), '10.0.0.1')])
    await Promise.all(behind.map(joined))
    expect(addressSockets.held('10.0.0.1')).toBe(2)
    expect(addressSockets.held('127.0.0.9')).toBe(0)
    expect((await refused(await from(server, '127.0.0.9', newId(), '10.0.0.1'))).code).toBe(1013)
    const neighbour = await from(server, '127.0.0.9', newId(), '10.0.0.2')
    await joined(neighbour)
    // From an untrusted address, a rotating X-Forwarded-For is ignored: the socket's own address counts.
    const spoofed = await Promise.all([from(server, '127.0.0.10', newId(), '10.9.0.1'), from(server, '127.0.0.10', newId(), '10.9.0.2')])
    await Promise.all(spoofed.map(joined))
    expect(addressSockets.held('127.0.0.10')).toBe(2)
    expect(addressSockets.held('10.9.0.1')).toBe(0)
    const third = await refused(await from(server, '127.0.0.10', newId(), '10.9.0.3'))
    expect(third).toMatchObject({ code: 1013, frames: [{ code: 'too_many_sockets' }] })
    await Promise.all([...behind, neighbour, ...spoofed].map((c) => c.close()))
  })

  it('REST: one limit per client across routes, rotating X-Forwarded-For from an untrusted address walks nothing, probes exempt', async () => {
    const server = await app({ RATE_HTTP_PER_MIN: '3', TRUST_PROXY: '10.1.0.0/16' })
    const get = (url: string, remoteAddress: string, xff?: string) =>
      server.app.inject({ url, remoteAddress, ...(xff ? { headers: { 'x-forwarded-for': xff } } : {}) })
    // Three different routes share one count.
    const codes = []
    for (const url of ['/api/sessions', '/api/me', `/api/session/${newId()}`, '/api/sessions']) codes.push((await get(url, '192.0.2.1')).statusCode)
    expect(codes).toEqual([200, 200, 404, 429])
    // Untrusted sender, a new X-Forwarded-For each time: still the same client.
    const spoofed = []
    for (let i = 0; i < 4; i++) spoofed.push((await get('/api/sessions', '192.0.2.2', `203.0.113.${i}`)).statusCode)
    expect(spoofed).toEqual([200, 200, 200, 429])
    // Through the trusted proxy, each forwarded client has its own count.
    expect((await get('/api/sessions', '10.1.2.3', '198.51.100.1')).statusCode).toBe(200)
    expect((await get('/api/sessions', '10.1.2.3', '198.51.100.2')).statusCode).toBe(200)
    // Probes are never limited.
    for (let i = 0; i < 5; i++) expect((await get('/health', '192.0.2.1')).statusCode).toBe(200)
  })
})

describe('whole-server limits', () => {
  it('MAX_SOCKETS: the next socket from any address gets busy_server + retryAfterMs + 1013; a freed one is taken again', async () => {
    const server = await app({ MAX_SOCKETS: '3' })
    const held = await Promise.all(['127.0.0.11', '127.0.0.12', '127.0.0.13'].map((ip) => from(server, ip)))
    await Promise.all(held.map(joined))
    const { code, frames } = await refused(await from(server, '127.0.0.14'))
    expect(code).toBe(1013)
    expect(frames).toEqual([expect.objectContaining({ type: 'error', code: 'busy_server', retryable: true })])
    expect(frames[0].retryAfterMs).toBeGreaterThan(0)
    await held[0].close()
    await eventually(() => server.app.services.serverSockets.held('') === 2)
    const again = await from(server, '127.0.0.14')
    await joined(again)
    await Promise.all([...held.slice(1), again].map((c) => c.close()))
  })

  it('MAX_LIVE_SESSIONS: a new session over it gets busy_server + 1013 and leaves no trace; live ones still take sockets', async () => {
    const server = await app({ MAX_LIVE_SESSIONS: '2', DISCONNECT_GRACE_MS: '0' })
    const ids = [newId(), newId()]
    const held = await Promise.all(ids.map((id, i) => from(server, `127.0.0.${15 + i}`, id)))
    await Promise.all(held.map(joined))
    const id = newId()
    const { code, frames } = await refused(await from(server, '127.0.0.17', id))
    expect(code).toBe(1013)
    expect(frames).toEqual([expect.objectContaining({ type: 'error', code: 'busy_server' })])
    expect(frames[0].retryAfterMs).toBeGreaterThan(0)
    expect((await server.app.inject({ url: `/api/session/${id}` })).statusCode).toBe(404)
    const join = await from(server, '127.0.0.17', ids[0])
    await joined(join)
    // A session that ends frees its place (grace 0).
    await Promise.all([held[1].close()])
    await eventually(() => server.app.services.hub.liveCount === 1)
    const next = await from(server, '127.0.0.17', id)
    await joined(next)
    await Promise.all([held[0], join, next].map((c) => c.close()))
  })
})
