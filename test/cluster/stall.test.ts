/**
 * DESIGN §11 with a Redis that stops answering without closing its connections (SIGSTOP here; a network cut
 * does the same): the bus is reported down within three heartbeats and up again once Redis answers, and an
 * attach request that was stuck in Redis meanwhile leaves no stand-in socket on the owner holding its session;
 * a SIGTERM while Redis is paused still exits at once, and a start stops with one line.
 */
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { TestClient } from '../support/app.js'
import { startInstance, startRedis, type Instance } from '../support/cluster.js'
import { applySchema, createScratchDatabase } from '../support/postgres.js'
import { startServerProcess } from '../support/server-process.js'

let db: { url: string; drop: () => Promise<void> }
let redis: Awaited<ReturnType<typeof startRedis>>
let a: Instance
let b: Instance

beforeAll(async () => {
  db = await createScratchDatabase()
  await applySchema(db.url)
  redis = await startRedis()
  // A 3 s lease: heartbeats every 600 ms, a link or the bus silent for 1.8 s is taken for gone.
  const env = {
    STORAGE: 'postgres', DATABASE_URL: db.url, REDIS_URL: redis.url, LLM_PROVIDER: 'offline', OFFLINE_TOKEN_DELAY_MS: '0',
    DISCONNECT_GRACE_MS: '1000', SESSION_LEASE_MS: '3000', WRITER_FLUSH_MS: '5'
  }
  ;[a, b] = await Promise.all(['a', 'b'].map((n) => startInstance(`stall-${process.pid}-${n}`, env)))
}, 60_000)
afterAll(async () => {
  for (const i of [a, b]) i?.server.child.kill('SIGKILL')
  redis?.child.kill('SIGCONT')
  await redis?.stop()
  await db?.drop()
})

interface Health { status: string; cluster: { bus: string; links: { forwarded: number; served: number } } }
const health = async (i: Instance): Promise<Health> => (await (await fetch(`${i.server.address}/health`)).json()) as Health
const connected = (f: { type: string }): boolean => f.type === 'connected'

async function statusOf (sessionId: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  try {
    return (await client.query<{ status: string }>('select status from sessions where id = $1', [sessionId])).rows[0]?.status
  } finally {
    await client.end()
  }
}

it('Redis paused: the bus is down and /health degraded; resumed: up again, and no stand-in is left of a stuck attach', async () => {
  const [s1, s2] = ['s1', 's2'].map((s) => `${s}-${process.pid}`)
  const owners = await Promise.all([s1, s2].map(async (id) => { const c = await TestClient.connect(a.server.wsUrl(id)); await c.waitFor(connected); return c }))
  const remote = await TestClient.connect(b.server.wsUrl(s1))
  await remote.waitFor(connected)

  redis.child.kill('SIGSTOP')
  // Sent before either side can tell (links are dropped 1.2–2.4 s from now, an attach gives up after 1.8 s): its
  // request waits in Redis, and b drops the link before the owner's answer can come.
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  const stuck = await TestClient.connect(b.server.wsUrl(s2))
  expect((await remote.closed).code).toBe(1012)
  // Before: both connections stayed 'ready', so /health said ok and bus up for as long as Redis was paused.
  for (const i of [a, b]) {
    await expect.poll(async () => await health(i), { timeout: 3_000, interval: 100 }).toMatchObject({ status: 'degraded', cluster: { bus: 'down' } })
  }

  redis.child.kill('SIGCONT')
  for (const i of [a, b]) await expect.poll(async () => (await health(i)).cluster.bus, { timeout: 3_000, interval: 100 }).toBe('up')
  await stuck.close()
  // b and a linked again (they exchange heartbeats, so a silent link is not what cleans up).
  // Links of the outage may still be dropped in the first moments after it (the contract: sockets may be told to
  // reconnect), so the client does what a client does on 1012: it connects again.
  let again = await TestClient.connect(b.server.wsUrl(s1))
  for (let tries = 0; !(await again.waitFor(connected).then(() => true, () => false)) && tries < 3; tries++) {
    expect((await again.closed).code).toBe(1012)
    again = await TestClient.connect(b.server.wsUrl(s1))
  }
  await again.waitFor(connected)
  // Before: the owner served the stuck attach once Redis delivered it (b ignored its frames, or the owner could not
  // publish them yet), and that stand-in held s2 live for good: its grace never began, it never ended.
  await owners[1].close()
  await expect.poll(async () => await statusOf(s2), { timeout: 4_000, interval: 100 }).toBe('ended')
  expect((await health(a)).cluster.links.served).toBe(1)
  await Promise.all([again.close(), owners[0].close()])
}, 30_000)

it('Redis paused at start: the start stops with one line naming REDIS_URL', async () => {
  redis.child.kill('SIGSTOP')
  try {
    // Before: connecting never settled, and Fastify gave up on the services plugin after 10 s with a stack trace.
    const start = startServerProcess({ STORAGE: 'postgres', DATABASE_URL: db.url, REDIS_URL: redis.url, LLM_PROVIDER: 'offline', SESSION_LEASE_MS: '1000' })
    await expect(start).rejects.toThrow(/Could not start: cluster mode: Redis at REDIS_URL is not reachable: no answer within \d+ ms \(check REDIS_URL\)\n*$/)
  } finally {
    redis.child.kill('SIGCONT')
  }
}, 30_000)

it('SIGTERM while Redis is paused: the instance still stops at once, exit 0', async () => {
  redis.child.kill('SIGSTOP')
  try {
    const t0 = Date.now()
    b.server.child.kill('SIGTERM')
    // Before: closing the bus waited for Redis's answer until the shutdown timer exited 1 (about 40 s).
    expect((await b.server.exited).code).toBe(0)
    expect(Date.now() - t0).toBeLessThan(5_000)
  } finally {
    redis.child.kill('SIGCONT')
  }
}, 60_000)
