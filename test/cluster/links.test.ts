/**
 * DESIGN §11, links between instances under a hostile or unlucky client: a socket the owner refuses through
 * another instance leaves nothing behind on either, a socket that reaches the owner while it is still reading
 * the session's log joins it (it is not sent away as if the session had moved), and a draining instance moves the
 * sockets it forwards at once.
 */
import { Redis } from 'ioredis'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { eventually, TestClient } from '../support/app.js'
import { channelOf } from '../../src/cluster/bus.js'
import { startInstance, TEST_REDIS_URL, type Instance } from '../support/cluster.js'
import { applySchema, createScratchDatabase } from '../support/postgres.js'

let db: { url: string; drop: () => Promise<void> }
let a: Instance
let b: Instance

beforeAll(async () => {
  db = await createScratchDatabase()
  await applySchema(db.url)
  const env = {
    STORAGE: 'postgres', DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, LLM_PROVIDER: 'offline',
    DISCONNECT_GRACE_MS: '600000', SESSION_LEASE_MS: '3000', MAX_SOCKETS_PER_SESSION: '2', WRITER_FLUSH_MS: '5',
    // Turns of a few seconds: long enough for the last test's drain to still be running one.
    OFFLINE_TOKEN_DELAY_MS: '50'
  }
  ;[a, b] = await Promise.all(['a', 'b'].map((n) => startInstance(`links-${process.pid}-${n}`, env)))
}, 60_000)
afterAll(async () => {
  for (const i of [a, b]) i?.server.child.kill('SIGKILL')
  await db?.drop()
})

const links = async (i: Instance): Promise<{ forwarded: number; served: number }> =>
  ((await (await fetch(`${i.server.address}/health`)).json()) as { cluster: { links: { forwarded: number; served: number } } }).cluster.links

const connected = (f: { type: string }): boolean => f.type === 'connected'

it('sockets refused through another instance leave no link behind on either', async () => {
  const id = `full-${process.pid}`
  const owner = await TestClient.connect(a.server.wsUrl(id))
  await owner.waitFor(connected)
  const second = await TestClient.connect(b.server.wsUrl(id))
  await second.waitFor(connected)
  // Over MAX_SOCKETS_PER_SESSION (2): each is refused by the owner, through b.
  for (let k = 0; k < 3; k++) {
    const extra = await TestClient.connect(b.server.wsUrl(id))
    expect(await extra.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'too_many_sockets' })
    expect((await extra.closed).code).toBe(1013)
  }
  await second.close()
  await owner.close()
  await eventually(async () => {
    const all = await Promise.all([links(a), links(b)])
    return all.every((l) => l.forwarded === 0 && l.served === 0)
  }, { timeoutMs: 2_000 }).catch(async () => { throw new Error(`links left: ${JSON.stringify([await links(a), await links(b)])}`) })
})

it('junk published on an instance\'s channel is logged and dropped, never fatal', async () => {
  const redis = new Redis(TEST_REDIS_URL)
  try {
    for (const junk of ['a x y z\nnull', 'a x y z\n{"sessionId":1}', 'a x y z\n[]', 'no header at all', 'f x y unknown\n{}', 'k x y z\n', 'c x y z\nnot a code']) {
      await redis.publish(channelOf(a.id), junk)
    }
  } finally {
    redis.disconnect()
  }
  // Still up and serving: a socket through b reaches a session a owns.
  const id = `junk-${process.pid}`
  const owner = await TestClient.connect(a.server.wsUrl(id))
  await owner.waitFor(connected)
  const remote = await TestClient.connect(b.server.wsUrl(id))
  await remote.waitFor(connected)
  remote.send({ type: 'ping' })
  await remote.waitFor((f) => f.type === 'pong')
  expect(a.server.child.exitCode).toBeNull()
  expect(a.server.output()).toContain('cluster: unreadable attach request')
  await Promise.all([owner.close(), remote.close()])
})

it('a socket that reaches the owner while it reads a long log joins the session', async () => {
  const id = `long-${process.pid}`
  const events = 20_000
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  try {
    await client.query(`insert into sessions (id, status, last_seq, seq_reserved) values ($1, 'active', $2, $2)`, [id, events])
    // Closed turns only (a user_message, then its assistant_message): nothing for the load to close.
    await client.query(`insert into session_events (session_id, seq, type, turn_id, payload)
      select $1, g, t.type, 't' || (g + 1) / 2, jsonb_build_object('seq', g, 'ts', '2026-01-01T00:00:00.000Z', 'type', t.type, 'turnId', 't' || (g + 1) / 2, 'content', 'text ' || g)
        || case when g % 2 = 0 then '{"finishReason": "stop"}'::jsonb else '{}'::jsonb end
      from generate_series(1, $2::integer) g, lateral (select case when g % 2 = 1 then 'user_message' else 'assistant_message' end as type) t`, [id, events])
  } finally {
    await client.end()
  }
  // Both at once: whichever instance takes the lease reads 20 pages of log while the other forwards its socket.
  const [first, other] = await Promise.all([TestClient.connect(a.server.wsUrl(id)), TestClient.connect(b.server.wsUrl(id))])
  for (const c of [first, other]) {
    await c.waitFor(connected, { timeoutMs: 10_000 })
    expect(c.frames.filter((f) => f.type === 'error')).toEqual([])
  }
  await Promise.all([first.close(), other.close()])
})

// Last: b drains and exits.
it('a draining instance closes the sockets it forwards at once and tells their owner, while its own turn goes on', async () => {
  const [sa, sb] = ['a', 'b'].map((s) => `drain-${s}-${process.pid}`)
  const owner = await TestClient.connect(a.server.wsUrl(sa))
  await owner.waitFor(connected)
  const proxied = await TestClient.connect(b.server.wsUrl(sa))
  const proxiedId = (await proxied.waitFor(connected)).connectionId as string
  const onB = await TestClient.connect(b.server.wsUrl(sb))
  await onB.waitFor(connected)
  onB.send({ type: 'user_message', content: 'a long story please' })
  const ack = await onB.waitFor((f) => f.type === 'user_message')
  await onB.waitFor((f) => f.type === 'delta')

  b.server.child.kill('SIGTERM')
  expect((await onB.closed).code).toBe(1012)
  // b's own session follows its turn through a while b drains it.
  const follower = await TestClient.connect(a.server.wsUrl(sb, ack.seq as number))
  expect((await proxied.closed).code).toBe(1012)
  // Before: b closed the socket it forwarded only once its drain was over, after the turn's end.
  expect(follower.ofType('assistant_message')).toEqual([])
  await owner.waitFor((f) => f.type === 'disconnected' && f.connectionId === proxiedId, { timeoutMs: 1_000 })
  expect(await follower.waitTurnEnd(ack.turnId as string)).toMatchObject({ finishReason: 'stop' })
  expect((await b.server.exited).code).toBe(0)
  await Promise.all([owner.close(), follower.close()])
}, 30_000)
