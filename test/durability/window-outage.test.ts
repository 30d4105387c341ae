/**
 * The bounded in-memory log on real Postgres behind a TCP proxy: while the database is away, events the
 * store has not taken stay in memory; a resume that needs the store is refused, not answered with a gap.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { eventually, TestClient, type RunningApp } from '../support/app.js'
import type { TcpProxy } from '../support/postgres.js'
import { startAppBehindProxy, type ProxiedApp } from '../support/proxied-app.js'
import { flushedEvents, isDense } from '../support/reliability.js'

const KEEP = 10
let app: ProxiedApp
let proxy: TcpProxy
let server: RunningApp

beforeAll(async () => {
  app = await startAppBehindProxy({ SESSION_MEMORY_EVENTS: String(KEEP), OFFLINE_TOKEN_DELAY_MS: '1', DURABLE_WAIT_MS: '2000', WRITER_FLUSH_MS: '5', DISCONNECT_GRACE_MS: '600000' })
  server = app.server
  proxy = app.proxy
})
afterAll(async () => { await app?.close() })

const health = async () => (await server.app.inject({ url: '/health' })).json()

it('keeps unstored events in memory through an outage, refuses a replay it cannot read, and replays exactly once the store is back', async () => {
  const id = `window-outage-${Date.now().toString(36)}`
  const main = await TestClient.connect(server.wsUrl(id))
  for (let i = 0; i < 8; i++) {
    main.send({ type: 'user_message', content: `message ${i}` })
    const user = await main.waitFor((f) => f.type === 'user_message' && f.content === `message ${i}`)
    await main.waitTurnEnd(user.turnId)
  }
  const storedBefore = await flushedEvents(server, id)
  const session = server.app.services.hub.session(id)!
  expect(session.events[0].seq).toBeGreaterThan(1)

  await proxy.down()
  // 2 × 12 connected/disconnected events the store cannot take: none may leave memory.
  for (let i = 0; i < 12; i++) {
    const visitor = await TestClient.connect(server.wsUrl(id))
    await visitor.waitFor((f) => f.type === 'connected')
    await visitor.close()
  }
  await eventually(() => main.stored().length === storedBefore.length + 24)
  const unstoredFrom = storedBefore.length + 1
  expect(session.events.length).toBeGreaterThanOrEqual(24)
  expect(session.events[0].seq).toBeLessThanOrEqual(unstoredFrom)
  expect((await health()).store.ok).toBe(false)

  // Needs events that are only in the store: refused with store_unavailable and 1013, not a gap.
  const early = await TestClient.connect(server.wsUrl(id, 0))
  const refused = await early.waitFor((f) => f.type === 'error')
  expect(refused).toMatchObject({ code: 'store_unavailable', retryable: true })
  expect((await early.closed).code).toBe(1013)
  expect(early.stored()).toEqual([])
  // Needs only what memory holds: served during the outage.
  const recent = await TestClient.connect(server.wsUrl(id, unstoredFrom - 1))
  const recentOwn = await recent.waitFor((f) => f.type === 'connected' && f.seq > storedBefore.length + 24)
  expect(recentOwn.seq).toBe(storedBefore.length + 25)
  expect(recent.stored().slice(0, 24)).toEqual(main.stored().slice(storedBefore.length))
  await recent.close()

  await proxy.up()
  await eventually(async () => { const h = await health(); return h.status === 'ok' && h.store.pendingWrites === 0 }, { timeoutMs: 20_000 })
  const all = await flushedEvents(server, id)
  expect(isDense(all)).toBe(true)
  // Stored now: they may leave memory, and a full replay is exact.
  main.send({ type: 'ping' })
  await main.waitFor((f) => f.type === 'pong')
  const late = await TestClient.connect(server.wsUrl(id, 0))
  const own = await late.waitFor((f) => f.type === 'connected' && f.seq > all.length)
  expect(late.stored().filter((f) => f.seq < own.seq)).toEqual(all)
  expect(own.seq).toBe(all.length + 1)
  await Promise.all([main.close(), late.close()])
})
