/** The app on real Postgres behind a TCP proxy: the database goes away mid-turn and comes back; nothing is lost or doubled. */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { eventually, TestClient, type Frame, type RunningApp } from '../support/app.js'
import type { TcpProxy } from '../support/postgres.js'
import { startAppBehindProxy, type ProxiedApp } from '../support/proxied-app.js'

let app: ProxiedApp
let proxy: TcpProxy
let server: RunningApp

beforeAll(async () => {
  app = await startAppBehindProxy({ OFFLINE_TOKEN_DELAY_MS: '15', DURABLE_WAIT_MS: '400', WRITER_FLUSH_MS: '5', DISCONNECT_GRACE_MS: '600000' })
  server = app.server
  proxy = app.proxy
})
afterAll(async () => { await app?.close() })

const health = async () => (await server.app.inject({ url: '/health' })).json()

it('keeps streaming while the store is down, reports degraded, and stores every event exactly once when it returns', async () => {
  const id = `outage-${Date.now().toString(36)}`
  const client = await TestClient.connect(server.wsUrl(id))
  client.send({ type: 'user_message', content: 'what is the CPU load and memory?' })
  const user = await client.waitFor((f) => f.type === 'user_message')
  await proxy.down()

  // The turn goes on: tool events and the answer reach the client while nothing can be written.
  const done = await client.waitTurnEnd(user.turnId)
  expect(done.finishReason).toBe('stop')
  expect(client.ofType('tool_result')[0]).toMatchObject({ ok: true })
  const degraded = await eventually(async () => { const h = await health(); return h.status === 'degraded' ? h : null })
  expect(degraded.store.ok).toBe(false)
  expect(degraded.store.pendingWrites).toBeGreaterThan(0)

  // A new message cannot be made durable in time: refused as store_unavailable, not run.
  const before = client.frames.length
  client.send({ type: 'user_message', content: 'are you there?' })
  const refused = await client.waitFor((f) => f.type === 'error', { from: before })
  expect(refused).toMatchObject({ code: 'store_unavailable', retryable: true })
  expect(client.frames.slice(before).some((f) => f.type === 'delta')).toBe(false)

  await proxy.up()
  await eventually(async () => { const h = await health(); return h.status === 'ok' && h.store.pendingWrites === 0 }, { timeoutMs: 20_000 })

  const stored = (await server.app.inject({ url: `/api/session/${id}/events?limit=1000` })).json().events as Frame[]
  const seqs = stored.map((e) => e.seq)
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1))
  // Every stored event the client was sent is stored once, identical; the refused turn is closed after it.
  const seen = client.frames.filter((f) => typeof f.seq === 'number')
  expect(stored.slice(0, seen.length)).toEqual(seen)
  const refusedTurn = stored.filter((e) => e.turnId === refused.turnId).map((e) => [e.type, e.finishReason])
  expect(refusedTurn).toEqual([['user_message', undefined], ['assistant_message', 'error']])
  // The refused message's frames reach the client once durable, in seq order, no duplicates.
  await client.waitFor((f) => f.type === 'assistant_message' && f.turnId === refused.turnId)
  const all = client.frames.filter((f) => typeof f.seq === 'number').map((f) => f.seq)
  expect(all).toEqual(seqs)
  await client.close()
})
