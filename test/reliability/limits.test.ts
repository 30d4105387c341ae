/** Limits, each with the code the client receives: frame size, frame and message rates, sockets per session, origins, heartbeat. */
import { afterAll, describe, expect, it } from 'vitest'
import { startApp, type RunningApp, TestClient } from '../support/app.js'
import { flushedEvents, isDense } from '../support/reliability.js'

let n = 0
const newId = () => `lim-${process.pid}-${n++}`
const apps: RunningApp[] = []
async function app (env: Record<string, string>): Promise<RunningApp> {
  const server = await startApp({ env: { DISCONNECT_GRACE_MS: '600000', ...env } })
  apps.push(server)
  return server
}
afterAll(async () => { await Promise.all(apps.map((a) => a.close())) })

const notFound = async (server: RunningApp, id: string) => (await server.app.inject({ url: `/api/session/${id}` })).statusCode === 404

describe('MAX_MESSAGE_BYTES', () => {
  it('a frame of exactly the limit is read; one byte more closes the socket with 1009 and the close is logged', async () => {
    const server = await app({ MAX_MESSAGE_BYTES: '1024', MAX_MESSAGE_CHARS: '4000' })
    const id = newId()
    const at = (bytes: number) => {
      const frame = JSON.stringify({ type: 'user_message', content: '' })
      return JSON.stringify({ type: 'user_message', content: 'x'.repeat(bytes - frame.length) })
    }
    expect(Buffer.byteLength(at(1024))).toBe(1024)
    const a = await TestClient.connect(server.wsUrl(id))
    a.send(at(1024))
    const end = await a.waitTurnEnd()
    expect(end.finishReason).toBe('stop')
    a.send(at(1025))
    expect((await a.closed).code).toBe(1009)
    const log = await flushedEvents(server, id)
    expect(log.at(-1)).toMatchObject({ type: 'disconnected', reason: expect.stringMatching(/^1009/) })
    expect(isDense(log)).toBe(true)
  })
})

describe('rate limits', () => {
  it('RATE_FRAMES_PER_MIN per connection: frames over it get rate_limited with retryAfterMs, the socket stays open, other sockets are not charged', async () => {
    const server = await app({ RATE_FRAMES_PER_MIN: '5' })
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    const b = await TestClient.connect(server.wsUrl(id))
    for (let i = 0; i < 8; i++) a.send({ type: 'ping' })
    const answers = await a.waitCount(8, (f) => f.type === 'pong' || f.type === 'error')
    expect(answers.filter((f) => f.type === 'pong')).toHaveLength(5)
    const limited = answers.filter((f) => f.type === 'error')
    expect(limited).toHaveLength(3)
    for (const e of limited) {
      expect(e).toMatchObject({ code: 'rate_limited', retryable: true })
      expect(e.retryAfterMs).toBeGreaterThan(0)
      expect(e.retryAfterMs).toBeLessThanOrEqual(60_000)
      expect(e.seq).toBeUndefined()
    }
    expect(a.open).toBe(true)
    b.send({ type: 'ping' })
    await b.waitFor((f) => f.type === 'pong')
    expect(b.ofType('error')).toEqual([])
    await Promise.all([a.close(), b.close()])
  })

  it('RATE_MESSAGES_PER_MIN per session, across sockets: the message over it gets rate_limited and is not stored or run', async () => {
    const server = await app({ RATE_MESSAGES_PER_MIN: '2' })
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    const b = await TestClient.connect(server.wsUrl(id))
    a.send({ type: 'user_message', content: 'one', clientId: 'm1' })
    await a.waitCount(1, (f) => f.type === 'assistant_message')
    b.send({ type: 'user_message', content: 'two', clientId: 'm2' })
    await a.waitCount(2, (f) => f.type === 'assistant_message')
    a.send({ type: 'user_message', content: 'three', clientId: 'm3' })
    const err = await a.waitFor((f) => f.type === 'error')
    expect(err).toMatchObject({ code: 'rate_limited', retryable: true })
    expect(err.retryAfterMs).toBeGreaterThan(0)
    expect(err.retryAfterMs).toBeLessThanOrEqual(60_000)
    // A resend of an already-stored message is an answer, not a new message: not limited.
    const before = a.frames.length
    a.send({ type: 'user_message', content: 'one', clientId: 'm1' })
    expect(await a.waitFor((f) => f.type === 'user_message', { from: before })).toMatchObject({ clientId: 'm1', seq: 3 })
    expect(b.ofType('error')).toEqual([])
    const users = (await flushedEvents(server, id)).filter((e) => e.type === 'user_message')
    expect(users.map((e) => e.clientId)).toEqual(['m1', 'm2'])
    await Promise.all([a.close(), b.close()])
  })
})

describe('MAX_SOCKETS_PER_SESSION', () => {
  it('one socket too many gets error too_many_sockets and close 1013, leaves no trace; a freed slot can be taken again', async () => {
    const server = await app({ MAX_SOCKETS_PER_SESSION: '2' })
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    const b = await TestClient.connect(server.wsUrl(id))
    await a.waitCount(2, (f) => f.type === 'connected')
    const c = await TestClient.connect(server.wsUrl(id))
    expect((await c.closed).code).toBe(1013)
    expect(c.frames.map((f) => [f.type, f.code])).toEqual([['error', 'too_many_sockets']])
    // Another session is not affected.
    const other = await TestClient.connect(server.wsUrl(newId()))
    await other.waitFor((f) => f.type === 'connected')
    await a.close()
    await b.waitFor((f) => f.type === 'disconnected')
    const d = await TestClient.connect(server.wsUrl(id))
    expect((await d.waitFor((f) => f.type === 'connected')).seq).toBe(4)
    const log = await flushedEvents(server, id)
    expect(log.map((e) => e.type)).toEqual(['connected', 'connected', 'disconnected', 'connected'])
    await Promise.all([b.close(), d.close(), other.close()])
  })
})

describe('origin allow-list', () => {
  it('ALLOWED_ORIGINS set: only those origins (and clients sending none); others close 1008 before any session work', async () => {
    const server = await app({ ALLOWED_ORIGINS: 'https://chat.example.com, https://admin.example.com' })
    for (const origin of ['https://chat.example.com', 'https://admin.example.com', undefined]) {
      const ok = await TestClient.connect(server.wsUrl(newId()), origin ? { origin } : {})
      expect((await ok.waitFor(() => true)).type).toBe('session')
      await ok.close()
    }
    for (const origin of ['https://evil.example', 'http://localhost:3000', server.baseUrl, 'https://chat.example.com.evil.example', 'null']) {
      const id = newId()
      const refused = await TestClient.connect(server.wsUrl(id), { origin })
      expect((await refused.closed).code).toBe(1008)
      expect(refused.frames).toEqual([])
      expect(await notFound(server, id)).toBe(true)
    }
  })

  it('by default: the server\'s own origin and localhost pages pass, any other origin closes 1008', async () => {
    const server = await app({})
    for (const origin of [server.baseUrl, 'http://localhost:5173', 'http://127.0.0.1:9999']) {
      const ok = await TestClient.connect(server.wsUrl(newId()), { origin })
      expect((await ok.waitFor(() => true)).type).toBe('session')
      await ok.close()
    }
    for (const origin of ['https://evil.example', 'http://localhost.evil.example', 'null']) {
      const id = newId()
      const refused = await TestClient.connect(server.wsUrl(id), { origin })
      expect((await refused.closed).code).toBe(1008)
      expect(refused.frames).toEqual([])
      expect(await notFound(server, id)).toBe(true)
    }
  })
})

describe('heartbeat', () => {
  it('a peer that does not answer pings is terminated and its disconnect recorded; a live one stays', async () => {
    const server = await app({ HEARTBEAT_MS: '40' })
    const id = newId()
    const good = await TestClient.connect(server.wsUrl(id))
    let pings = 0
    good.ws.on('ping', () => { pings++ })
    await good.waitFor((f) => f.type === 'connected')
    const dead = await TestClient.connect(server.wsUrl(id), { autoPong: false })
    const deadConnected = await dead.waitFor((f) => f.type === 'connected')
    expect((await dead.closed).code).toBe(1006)
    const gone = await good.waitFor((f) => f.type === 'disconnected')
    expect(gone.connectionId).toBe(deadConnected.connectionId)
    expect(gone.reason).toMatch(/^1006/)
    // The good socket answered its pings through the same intervals and is still here.
    expect(pings).toBeGreaterThanOrEqual(2)
    expect(good.open).toBe(true)
    good.send({ type: 'ping' })
    await good.waitFor((f) => f.type === 'pong')
    await good.close()
  })
})
