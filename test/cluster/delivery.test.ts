/**
 * DESIGN §11, no stickiness: three real instances on one Postgres and one Redis; each session's sockets spread
 * over all three. Every socket sees the same frames in the same order, the text equals the stored answer, and a
 * message, a cancel or a ping works from any instance; a second message while a turn runs elsewhere is `busy`.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { TestClient, type Frame } from '../support/app.js'
import { startInstance, storedWhen, TEST_REDIS_URL, type Instance } from '../support/cluster.js'
import { sse, startFakeOpenAI, textChunks, type FakeOpenAI } from '../support/fake-openai.js'
import { applySchema, createScratchDatabase } from '../support/postgres.js'

let db: { url: string; drop: () => Promise<void> }
let fake: FakeOpenAI
let instances: Instance[] = []
const ANSWER = 'Every socket of this session hears the same words in the same order, whichever server it reached.'

beforeAll(async () => {
  db = await createScratchDatabase()
  await applySchema(db.url)
  fake = await startFakeOpenAI()
  fake.fallback = sse(textChunks(ANSWER, { perChunk: 2 }), { delayMs: 15 })
  const env = {
    STORAGE: 'postgres', DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test',
    OPENAI_BASE_URL: fake.url, LLM_MAX_RETRIES: '0', WRITER_FLUSH_MS: '5', DISCONNECT_GRACE_MS: '600000', SESSION_LEASE_MS: '3000'
  }
  instances = await Promise.all(['a', 'b', 'c'].map((n) => startInstance(`deliver-${process.pid}-${n}`, env)))
}, 60_000)
afterAll(async () => {
  for (const i of instances) i.server.child.kill('SIGKILL')
  await fake?.close()
  await db?.drop()
})

/** The frames every socket of the session shares from `seq` on: stored events after it, deltas, in arrival order. */
const shared = (client: TestClient, afterSeq: number): Frame[] =>
  client.frames.filter((f) => (typeof f.seq === 'number' && f.seq > afterSeq) || (f.type === 'delta' && client.frames.some((g) => g.type === 'user_message' && g.turnId === f.turnId && (g.seq as number) > afterSeq)))

it('sockets on three instances: same frames in the same order; message, busy, cancel and ping from any of them', async () => {
  const sessions = ['s0', 's1', 's2'].map((s) => `${s}-${process.pid}`)
  await Promise.all(sessions.map(async (id, k) => {
    // The first socket's instance owns the session; the other two reach it over Redis.
    const clients: TestClient[] = []
    for (let j = 0; j < 3; j++) {
      const c = await TestClient.connect(instances[(k + j) % 3].server.wsUrl(id))
      await c.waitFor((f) => f.type === 'connected')
      clients.push(c)
    }
    const [owner, second, third] = clients
    const lastJoin = (await owner.waitCount(3, (f) => f.type === 'connected')).at(-1)!.seq as number
    for (const c of [second, third]) await c.waitCount(2, (f) => f.type === 'connected' && (f.seq as number) <= lastJoin).catch(() => {})

    second.send({ type: 'ping' })
    await second.waitFor((f) => f.type === 'pong')

    // A message from a non-owner runs on the owner; a second one from the third instance meanwhile is busy.
    second.send({ type: 'user_message', content: 'Tell me.', clientId: `m1-${id}` })
    const ack = await second.waitFor((f) => f.type === 'user_message' && f.clientId === `m1-${id}`)
    await third.waitFor((f) => f.type === 'delta' && f.turnId === ack.turnId)
    third.send({ type: 'user_message', content: 'Me too.' })
    expect(await third.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'busy', turnId: ack.turnId })
    const ends = await Promise.all(clients.map((c) => c.waitTurnEnd(ack.turnId as string)))
    for (const end of ends) expect(end).toMatchObject({ finishReason: 'stop', content: ANSWER })

    // A cancel from the third instance stops a turn started on the owner's.
    fake.script(sse(textChunks(ANSWER.repeat(8), { perChunk: 2 }), { delayMs: 20 }))
    owner.send({ type: 'user_message', content: 'Go on, at length.', clientId: `m2-${id}` })
    const ack2 = await third.waitFor((f) => f.type === 'user_message' && f.clientId === `m2-${id}`)
    await Promise.all(clients.map((c) => c.waitFor((f) => f.type === 'delta' && f.turnId === ack2.turnId && f.index === 3)))
    third.send({ type: 'cancel', turnId: ack2.turnId })
    const cancelled = await Promise.all(clients.map((c) => c.waitTurnEnd(ack2.turnId as string)))
    for (const end of cancelled) expect(end).toMatchObject({ finishReason: 'cancelled' })

    const stored = await storedWhen(db.url, id, (events) => events.filter((e) => e.type === 'assistant_message').length === 2)
    const views = clients.map((c) => shared(c, lastJoin))
    // Same frames, same order, on every socket; stored ones equal the store's.
    expect(views[1]).toEqual(views[0])
    expect(views[2]).toEqual(views[0])
    expect(views[0].filter((f) => typeof f.seq === 'number')).toEqual(stored.filter((e) => (e.seq as number) > lastJoin))
    expect(views[0].filter((f) => f.type === 'delta' && f.turnId === ack.turnId).map((f) => f.text).join('')).toBe(ANSWER)
    expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1))
    expect(stored.filter((e) => e.type === 'assistant_message').map((e) => e.finishReason)).toEqual(['stop', 'cancelled'])
    expect(stored.filter((e) => e.type === 'connected')).toHaveLength(3)
    await Promise.all(clients.map((c) => c.close()))
  }))
  // Nothing per token for a session whose sockets are all on its owner: the other instances served nobody.
  const health = await Promise.all(instances.map(async (i) => (await fetch(`${i.server.address}/health`)).json() as Promise<{ cluster: { bus: string } }>))
  for (const h of health) expect(h.cluster.bus).toBe('up')
}, 60_000)

it('a session whose sockets are all on its owner publishes nothing, per token or otherwise', async () => {
  const published = async (i: Instance): Promise<number> => ((await (await fetch(`${i.server.address}/health`)).json()) as { cluster: { links: { published: number } } }).cluster.links.published
  const id = `local-${process.pid}`
  const clients = [await TestClient.connect(instances[1].server.wsUrl(id)), await TestClient.connect(instances[1].server.wsUrl(id))]
  await Promise.all(clients.map((c) => c.waitFor((f) => f.type === 'connected')))
  // Links of the earlier test wind down (their heartbeats stop once no link is left).
  await expect.poll(async () => ((await (await fetch(`${instances[1].server.address}/health`)).json()) as { cluster: { links: { forwarded: number; served: number } } }).cluster.links, { timeout: 5_000 }).toEqual(expect.objectContaining({ forwarded: 0, served: 0 }))
  await new Promise((resolve) => setTimeout(resolve, 1_100))
  const before = await Promise.all(instances.map(published))
  clients[0].send({ type: 'user_message', content: 'Only here.', clientId: 'local-1' })
  const end = await clients[1].waitTurnEnd()
  expect(end).toMatchObject({ finishReason: 'stop', content: ANSWER })
  expect(clients[1].ofType('delta').length).toBeGreaterThan(40)
  expect(await Promise.all(instances.map(published))).toEqual(before)
  await Promise.all(clients.map((c) => c.close()))
}, 30_000)
