/**
 * DESIGN §11, Redis as a part that fails: refused or unreachable at start (one clear line, no secret printed); lost
 * while running (sessions go on on their owners, sockets on other instances are told to reconnect, /health says
 * degraded); back again (cross-instance delivery resumes).
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { TestClient } from '../support/app.js'
import { freePort, startInstance, startRedis, type Instance } from '../support/cluster.js'
import { sse, startFakeOpenAI, textChunks, type FakeOpenAI } from '../support/fake-openai.js'
import { applySchema, createScratchDatabase } from '../support/postgres.js'
import { startServerProcess } from '../support/server-process.js'

let db: { url: string; drop: () => Promise<void> }
let fake: FakeOpenAI
const started: Instance[] = []
const ANSWER = 'Still here, on the instance that owns this session.'

beforeAll(async () => {
  db = await createScratchDatabase()
  await applySchema(db.url)
  fake = await startFakeOpenAI()
  fake.fallback = sse(textChunks(ANSWER, { perChunk: 3 }), { delayMs: 5 })
})
afterAll(async () => {
  for (const i of started) i.server.child.kill('SIGKILL')
  await fake?.close()
  await db?.drop()
})

it('REDIS_URL with the memory store is refused at start, with a line saying why', async () => {
  await expect(startServerProcess({ STORAGE: 'memory', REDIS_URL: 'redis://127.0.0.1:6379' })).rejects.toThrow(/REDIS_URL: cluster mode needs a shared store: set STORAGE=postgres or STORAGE=supabase/)
})

it('Redis unreachable at start: exit 1 with one line naming REDIS_URL, and never the password in it', async () => {
  const port = await freePort()
  const error = await startServerProcess({ STORAGE: 'postgres', DATABASE_URL: db.url, REDIS_URL: `redis://:hunter2-secret@127.0.0.1:${port}` }).then(() => null, (err: Error) => err.message)
  expect(error).toMatch(new RegExp(`Could not start: cluster mode: Redis at REDIS_URL is not reachable: .*ECONNREFUSED.*${port}.* \\(check REDIS_URL\\)`))
  expect(error).not.toContain('hunter2')
})

it('Redis lost while running: the owner goes on, other instances\' sockets reconnect, /health degraded; back: delivery resumes', async () => {
  const redis = await startRedis()
  try {
    const env = {
      STORAGE: 'postgres', DATABASE_URL: db.url, REDIS_URL: redis.url, LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: fake.url, LLM_MAX_RETRIES: '0', WRITER_FLUSH_MS: '5', DISCONNECT_GRACE_MS: '600000', SESSION_LEASE_MS: '3000'
    }
    const [a, b] = await Promise.all(['a', 'b'].map((n) => startInstance(`redis-${process.pid}-${n}`, env)))
    started.push(a, b)
    const id = `outage-${process.pid}`
    const owner = await TestClient.connect(a.server.wsUrl(id))
    await owner.waitFor((f) => f.type === 'connected')
    const remote = await TestClient.connect(b.server.wsUrl(id))
    await remote.waitFor((f) => f.type === 'connected')

    await redis.stop()
    // The socket on b lost its way to the owner: told to reconnect.
    expect((await remote.closed).code).toBe(1012)
    const health = await (await fetch(`${b.server.address}/health`)).json() as { status: string; cluster: { bus: string; links: { forwarded: number } } }
    expect(health).toMatchObject({ status: 'degraded', cluster: { bus: 'down', links: { forwarded: 0 } } })
    // The owner's own socket chats on.
    owner.send({ type: 'user_message', content: 'Are you there?', clientId: 'o1' })
    const ack = await owner.waitFor((f) => f.type === 'user_message' && f.clientId === 'o1')
    expect(await owner.waitTurnEnd(ack.turnId as string)).toMatchObject({ finishReason: 'stop', content: ANSWER })
    // A socket reaching b meanwhile is refused with a retry, not attached to a copy of the session.
    const refused = await TestClient.connect(b.server.wsUrl(id))
    expect(await refused.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'busy_server' })
    expect((await refused.closed).code).toBe(1013)

    const back = await startRedis(redis.port)
    try {
      await expect.poll(async () => ((await (await fetch(`${b.server.address}/health`)).json()) as { cluster: { bus: string } }).cluster.bus, { timeout: 10_000, interval: 100 }).toBe('up')
      await expect.poll(async () => ((await (await fetch(`${a.server.address}/health`)).json()) as { status: string }).status, { timeout: 10_000, interval: 100 }).toBe('ok')
      const lastSeen = Math.max(...remote.stored().map((f) => f.seq as number))
      const again = await TestClient.connect(b.server.wsUrl(id, lastSeen))
      // What it missed while Redis was down comes first, then live frames again, both ways.
      const missed = await again.waitFor((f) => f.type === 'assistant_message' && f.turnId === ack.turnId)
      expect(missed).toMatchObject({ content: ANSWER })
      again.send({ type: 'user_message', content: 'And from b?', clientId: 'b1' })
      const ack2 = await owner.waitFor((f) => f.type === 'user_message' && f.clientId === 'b1')
      expect(await again.waitTurnEnd(ack2.turnId as string)).toMatchObject({ finishReason: 'stop', content: ANSWER })
      expect(again.ofType('delta').filter((f) => f.turnId === ack2.turnId).map((f) => f.text).join('')).toBe(ANSWER)
      await Promise.all([again.close(), owner.close()])
    } finally {
      await back.stop()
    }
  } finally {
    await redis.stop()
  }
}, 60_000)
