/**
 * A socket that resumes from before the in-memory window reads the store while the session goes on: the
 * database is held (TCP proxy stops forwarding) so that catch-up is slow for real. The session must not end
 * under it, the socket cap counts it, a socket that leaves meanwhile lets the session end, and events the
 * store lost leave no silent gap in a replay.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import pg from 'pg'
import { eventually, TestClient, type RunningApp } from '../support/app.js'
import type { TcpProxy } from '../support/postgres.js'
import { startAppBehindProxy, type ProxiedApp } from '../support/proxied-app.js'
import { flushedEvents, isDense } from '../support/reliability.js'

let app: ProxiedApp
let proxy: TcpProxy
let server: RunningApp
let n = 0
const newId = () => `races-${process.pid}-${n++}`

beforeAll(async () => {
  app = await startAppBehindProxy({
    SESSION_MEMORY_EVENTS: '10', MAX_SOCKETS_PER_SESSION: '2', DISCONNECT_GRACE_MS: '0',
    OFFLINE_TOKEN_DELAY_MS: '1', DURABLE_WAIT_MS: '3000', WRITER_FLUSH_MS: '5'
  })
  server = app.server
  proxy = app.proxy
})
afterEach(() => { proxy.release() })
afterAll(async () => { await app?.close() })

async function sql (text: string, values: unknown[] = []): Promise<void> {
  const db = new pg.Client({ connectionString: app.databaseUrl })
  await db.connect()
  try { await db.query(text, values) } finally { await db.end() }
}

const hub = () => server.app.services.hub
const status = async (id: string) => (await server.app.inject({ url: `/api/session/${id}` })).json().status as string

async function runTurns (client: TestClient, turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) {
    client.send({ type: 'user_message', content: `message ${i}`, clientId: `m-${i}` })
    const user = await client.waitFor((f) => f.type === 'user_message' && f.clientId === `m-${i}`)
    await client.waitTurnEnd(user.turnId)
  }
}

it('a socket catching up holds the session: its last other socket leaving does not end it, and it counts against the socket cap', async () => {
  const id = newId()
  const a = await TestClient.connect(server.wsUrl(id))
  await runTurns(a, 8)
  await flushedEvents(server, id)
  const session = hub().session(id)!
  expect(session.events[0].seq).toBeGreaterThan(1)

  proxy.hold()
  const b = await TestClient.connect(server.wsUrl(id, 0))
  await b.waitFor((f) => f.type === 'session')
  await a.close()
  await eventually(() => session.peers.size === 0)
  // Grace 0: without B counted the session would end now.
  await new Promise((resolve) => setTimeout(resolve, 200))
  expect(hub().session(id)).toBe(session)
  const c = await TestClient.connect(server.wsUrl(id))
  await c.waitFor((f) => f.type === 'connected')
  const d = await TestClient.connect(server.wsUrl(id, 0))
  expect(await d.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'too_many_sockets' })
  expect((await d.closed).code).toBe(1013)
  expect(b.stored()).toEqual([])

  proxy.release()
  const bOwn = await b.waitFor((f) => f.type === 'connected' && f.connectionId !== undefined && f.seq > c.stored()[0].seq)
  expect(hub().session(id)).toBe(session)
  b.send({ type: 'user_message', content: 'still here', clientId: 'b-1' })
  const bUser = await b.waitFor((f) => f.type === 'user_message' && f.clientId === 'b-1')
  await c.waitFor((f) => f.type === 'user_message' && f.clientId === 'b-1')
  expect(bUser.seq).toBe(bOwn.seq + 1)
  await b.waitTurnEnd(bUser.turnId)
  await Promise.all([b.close(), c.close()])

  const all = await flushedEvents(server, id)
  expect(isDense(all)).toBe(true)
  expect(b.stored().filter((f) => f.seq <= bUser.seq)).toEqual(all.slice(0, bUser.seq))
  await eventually(async () => (await status(id)) === 'ended')
})

it('a socket that leaves during its catch-up stops holding the session at once; the session ends after the grace', async () => {
  const id = newId()
  const a = await TestClient.connect(server.wsUrl(id))
  await runTurns(a, 8)
  await flushedEvents(server, id)
  proxy.hold()
  const b = await TestClient.connect(server.wsUrl(id, 0))
  await b.waitFor((f) => f.type === 'session')
  const session = hub().session(id)!
  await a.close()
  expect(session.socketCount).toBe(1)
  // B leaves while its store read still hangs: it stops holding the session at once.
  await b.close()
  await eventually(() => session.socketCount === 0, { timeoutMs: 2_000 })
  proxy.release()
  await eventually(() => hub().session(id) === undefined)
  await eventually(async () => (await status(id)) === 'ended')
  // B never joined: the log has no connected event for it.
  const all = await flushedEvents(server, id)
  expect(all.filter((e) => e.type === 'connected')).toHaveLength(1)
})

it('events the store lost leave no silent gap: a resume sends every stored event after them, a repeat of a lost message is refused', async () => {
  const id = newId()
  const a = await TestClient.connect(server.wsUrl(id))
  await runTurns(a, 10)
  const stored = await flushedEvents(server, id)
  const lostUser = stored.find((e) => e.clientId === 'm-1')!
  const lost = [lostUser.seq, lostUser.seq + 1, lostUser.seq + 2]
  await sql('delete from public.session_events where session_id = $1 and seq = any($2::int[])', [id, lost])
  expect(hub().session(id)!.events[0].seq).toBeGreaterThan(lost[2] + 1)

  const b = await TestClient.connect(server.wsUrl(id, lost[0] - 1))
  const own = await b.waitFor((f) => f.type === 'connected' && f.seq > stored.length)
  expect(b.stored().filter((f) => f.seq < own.seq)).toEqual(stored.filter((e) => e.seq >= lost[0] && !lost.includes(e.seq)))

  const before = a.frames.length
  a.send({ type: 'user_message', content: 'message 1', clientId: 'm-1' })
  expect(await a.waitFor((f) => f.type === 'error', { from: before })).toMatchObject({ code: 'store_unavailable', retryable: false })
  a.send({ type: 'ping' })
  await a.waitFor((f) => f.type === 'pong', { from: before })
  expect(a.frames.slice(before).some((f) => f.type === 'user_message' || f.type === 'delta')).toBe(false)
  await Promise.all([a.close(), b.close()])
})

it('a message the store refused for good was never acknowledged: sent again with its clientId, it runs', async () => {
  const id = newId()
  // A real refusal: Postgres rejects this one row (check_violation), the writer gives up on it and drops it.
  await sql("alter table public.session_events add constraint refuse_marked check (payload->>'content' is distinct from 'refuse me once')")
  const a = await TestClient.connect(server.wsUrl(id))
  try {
    a.send({ type: 'user_message', content: 'refuse me once', clientId: 'r-1' })
    // Refused for good: not retryable (the same content would be refused again).
    expect(await a.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'store_unavailable', retryable: false, message: 'storage refused the message; it was not run' })
    await a.waitFor((f) => f.type === 'assistant_message' && f.finishReason === 'error')
  } finally {
    await sql('alter table public.session_events drop constraint refuse_marked')
  }
  expect(a.ofType('user_message')).toEqual([])
  a.send({ type: 'user_message', content: 'refuse me once', clientId: 'r-1' })
  const user = await a.waitFor((f) => f.type === 'user_message' && f.clientId === 'r-1')
  const done = await a.waitTurnEnd(user.turnId)
  expect(done.finishReason).toBe('stop')
  const stored = await flushedEvents(server, id)
  expect(stored.filter((e) => e.type === 'user_message')).toEqual([user])
  await a.close()
})
