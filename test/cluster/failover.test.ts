/**
 * DESIGN §11 with real processes killed for real: an owner SIGKILLed mid-turn is replaced within SESSION_LEASE_MS
 * + 5 s; a SIGTERM drains (turns finish, their frames reach the sockets that moved to other instances); a rolling
 * restart of every instance while 20 sessions chat loses and duplicates nothing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Frame } from '../support/app.js'
import { restartInstance, RoamingClient, startInstance, storedEvents, storedWhen, TEST_REDIS_URL, type Instance } from '../support/cluster.js'
import { sse, startFakeOpenAI, textChunks, type FakeOpenAI } from '../support/fake-openai.js'
import { applySchema, createScratchDatabase } from '../support/postgres.js'

const LEASE_MS = 2_000
let db: { url: string; drop: () => Promise<void> }
let fake: FakeOpenAI
let env: Record<string, string>
const everyInstance: Instance[] = []
const ANSWER = 'Short and steady words, streamed a few at a time, so that every turn spans an instant of trouble.'

beforeAll(async () => {
  db = await createScratchDatabase()
  await applySchema(db.url)
  fake = await startFakeOpenAI()
  fake.fallback = sse(textChunks(ANSWER, { perChunk: 3 }), { delayMs: 25 })
  env = {
    STORAGE: 'postgres', DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test',
    OPENAI_BASE_URL: fake.url, LLM_MAX_RETRIES: '0', WRITER_FLUSH_MS: '5', DISCONNECT_GRACE_MS: '600000',
    SESSION_LEASE_MS: String(LEASE_MS), DRAIN_TIMEOUT_MS: '15000', RATE_MESSAGES_PER_MIN: '600',
    // Every client here comes from 127.0.0.1: the per-address limits would throttle the 20 sessions as one.
    RATE_MESSAGES_PER_MIN_PER_IP: '100000', RATE_CONNECTIONS_PER_MIN_PER_IP: '100000', MAX_NEW_SESSIONS_PER_IP_PER_MIN: '100000'
  }
})
afterAll(async () => {
  for (const i of everyInstance) for (const run of i.runs) { run.child.kill('SIGCONT'); run.child.kill('SIGKILL') }
  await fake?.close()
  await db?.drop()
})

async function cluster (tag: string): Promise<Instance[]> {
  const started = await Promise.all(['a', 'b', 'c'].map((n) => startInstance(`${tag}-${process.pid}-${n}`, env)))
  everyInstance.push(...started)
  return started
}

/** Every roaming client saw each seq with one event only, the store's where the store has it. */
function checkViews (clients: RoamingClient[], stored: Map<string, Frame[]>): void {
  for (const c of clients) {
    expect(c.conflicts, c.sessionId).toEqual([])
    const log = stored.get(c.sessionId)!
    const bySeq = new Map(log.map((e) => [e.seq as number, e]))
    for (const e of c.storedView()) {
      if (bySeq.has(e.seq as number)) expect(e, `${c.sessionId} seq ${String(e.seq)}`).toEqual(bySeq.get(e.seq as number))
      // A seq the store never got: the client must have been told its view was reset.
      else expect(c.frames.some((f) => f.type === 'session' && f.reset === true), `${c.sessionId} saw lost seq ${String(e.seq)}`).toBe(true)
    }
  }
}

it('an owner SIGKILLed mid-turn: another instance owns the session within the bound, the turn is interrupted once, the next message works', async () => {
  const instances = await cluster('kill')
  const id = `kill-${process.pid}`
  fake.script(sse(textChunks(ANSWER.repeat(6), { perChunk: 2 }), { delayMs: 30 }))
  // The first socket (on a) makes a the owner; the others hold sockets through b and c, and one more on a itself.
  const clients = [0, 1, 2, 0].map((n) => new RoamingClient(id, () => instances, n))
  for (const c of clients) await c.start()
  clients[1].send({ type: 'user_message', content: 'Talk.', clientId: 'k1' })
  const ack = await clients[0].waitFor((f) => f.type === 'user_message' && f.clientId === 'k1')
  await Promise.all(clients.map((c) => c.waitFor((f) => f.type === 'delta' && f.index === 4)))

  instances[0].server.child.kill('SIGKILL')
  instances[0].alive = false
  const killedAt = Date.now()
  const ends = await Promise.all(clients.map(async (c) => {
    const end = await c.waitFor((f) => f.type === 'assistant_message' && f.turnId === ack.turnId, { timeoutMs: LEASE_MS + 10_000 })
    return { end, ms: Date.now() - killedAt }
  }))
  for (const { end, ms } of ends) {
    expect(end).toMatchObject({ finishReason: 'interrupted' })
    expect(ms).toBeLessThan(LEASE_MS + 5_000)
  }

  clients[2].send({ type: 'user_message', content: 'Again.', clientId: 'k2' })
  const ack2 = await clients[3].waitFor((f) => f.type === 'user_message' && f.clientId === 'k2')
  for (const c of clients) expect(await c.waitFor((f) => f.type === 'assistant_message' && f.turnId === ack2.turnId)).toMatchObject({ finishReason: 'stop', content: ANSWER })
  const log = await storedWhen(db.url, id, (events) => events.some((e) => e.type === 'assistant_message' && e.turnId === ack2.turnId))
  const seqs = log.map((e) => e.seq as number)
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
  expect(new Set(seqs).size).toBe(seqs.length)
  expect(log.filter((e) => e.type === 'assistant_message').map((e) => [e.turnId, e.finishReason])).toEqual([[ack.turnId, 'interrupted'], [ack2.turnId, 'stop']])
  expect(log.filter((e) => e.type === 'user_message').map((e) => e.clientId)).toEqual(['k1', 'k2'])
  checkViews(clients, new Map([[id, log]]))
  await Promise.all(clients.map((c) => c.stop()))
}, 60_000)

it('SIGTERM drains: ready 503, sockets closed 1012, the running turn finishes and reaches its sockets on the other instances, exit 0', async () => {
  const instances = await cluster('drain')
  const id = `drain-${process.pid}`
  const long = ANSWER.repeat(5)
  fake.script(sse(textChunks(long, { perChunk: 2 }), { delayMs: 30 }))
  const clients = [0, 0, 1].map((n) => new RoamingClient(id, () => instances, n))
  for (const c of clients) await c.start()
  clients[0].send({ type: 'user_message', content: 'A long one.', clientId: 'd1' })
  const ack = await clients[0].waitFor((f) => f.type === 'user_message' && f.clientId === 'd1')
  await Promise.all(clients.map((c) => c.waitFor((f) => f.type === 'delta' && f.index === 3)))

  const owner = instances[0]
  owner.server.child.kill('SIGTERM')
  owner.alive = false
  await expect.poll(async () => (await fetch(`${owner.server.address}/health/ready`)).status, { interval: 20, timeout: 2_000 }).toBe(503)
  const ends = await Promise.all(clients.map((c) => c.waitFor((f) => f.type === 'assistant_message' && f.turnId === ack.turnId)))
  for (const end of ends) expect(end).toMatchObject({ finishReason: 'stop', content: long })
  for (const c of clients) expect(c.deltaText(ack.turnId as string)).toBe(long)
  // The owner's two sockets were closed 1012 and came back through b or c while the turn went on.
  expect(clients[0].closes[0]).toBe(1012)
  expect(clients[1].closes[0]).toBe(1012)
  expect((await owner.server.exited).code).toBe(0)

  clients[1].send({ type: 'user_message', content: 'And now?', clientId: 'd2' })
  const ack2 = await clients[2].waitFor((f) => f.type === 'user_message' && f.clientId === 'd2')
  for (const c of clients) expect(await c.waitFor((f) => f.type === 'assistant_message' && f.turnId === ack2.turnId)).toMatchObject({ finishReason: 'stop' })
  const log = await storedWhen(db.url, id, (events) => events.some((e) => e.type === 'assistant_message' && e.turnId === ack2.turnId))
  expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1))
  checkViews(clients, new Map([[id, log]]))
  await Promise.all(clients.map((c) => c.stop()))
}, 60_000)

it('a rolling restart of every instance while 20 sessions chat: nothing lost or duplicated, every turn closed once, every view equals the store', async () => {
  const instances = await cluster('roll')
  const ids = Array.from({ length: 20 }, (_, i) => `roll-${process.pid}-${i}`)
  const clients = ids.map((id, i) => new RoamingClient(id, () => instances, i))
  await Promise.all(clients.map((c) => c.start()))
  let rolling = true
  const sent = new Map<string, string[]>()
  // Each session chats turn after turn; a message refused or lost with its socket is sent again under its clientId.
  const chats = clients.map(async (c) => {
    const mine: string[] = []
    sent.set(c.sessionId, mine)
    for (let n = 0; rolling || n < 2; n++) {
      const clientId = `${c.sessionId}-m${n}`
      mine.push(clientId)
      let from = c.frames.length
      c.send({ type: 'user_message', content: `turn ${n}`, clientId })
      for (;;) {
        const hit = await c.waitFor((f) => (f.type === 'user_message' && f.clientId === clientId) || (f.type === 'error' && f.code !== 'busy') || f.type === 'session', { from, timeoutMs: 30_000 })
        if (hit.type === 'user_message') {
          await c.waitFor((f) => f.type === 'assistant_message' && f.turnId === hit.turnId, { timeoutMs: 30_000 })
          break
        }
        // Refused (the instance drains) or reconnected before the ack: the same clientId again, answered once, after
        // the wait the refusal asked for.
        if (hit.type === 'error') await new Promise((resolve) => setTimeout(resolve, typeof hit.retryAfterMs === 'number' ? hit.retryAfterMs : 200))
        from = c.frames.length
        c.send({ type: 'user_message', content: `turn ${n}`, clientId })
      }
    }
  })
  for (const instance of instances) {
    await new Promise((resolve) => setTimeout(resolve, 600))
    const old = instance.server
    instance.alive = false
    old.child.kill('SIGTERM')
    expect((await old.exited).code).toBe(0)
    await restartInstance(instance, env)
  }
  rolling = false
  await Promise.all(chats)
  const logs = new Map<string, Frame[]>()
  for (const id of ids) logs.set(id, await storedEvents(db.url, id))
  let turns = 0
  for (const c of clients) {
    const log = logs.get(c.sessionId)!
    expect(log.map((e) => e.seq), c.sessionId).toEqual(log.map((_, i) => i + 1))
    const users = log.filter((e) => e.type === 'user_message')
    expect(users.map((e) => e.clientId), c.sessionId).toEqual(sent.get(c.sessionId))
    const answers = log.filter((e) => e.type === 'assistant_message')
    expect(answers.map((e) => e.turnId), c.sessionId).toEqual(users.map((e) => e.turnId))
    expect(answers.every((e) => e.finishReason === 'stop' && e.content === ANSWER), c.sessionId).toBe(true)
    turns += answers.length
    // The client's view is the store up to what it saw last; after that only its own socket's disconnect is stored.
    expect(c.storedView(), c.sessionId).toEqual(log.filter((e) => (e.seq as number) <= c.lastSeq))
  }
  checkViews(clients, logs)
  expect(turns).toBeGreaterThanOrEqual(40)
  expect(clients.reduce((n, c) => n + c.closes.filter((code) => code === 1012).length, 0)).toBeGreaterThan(0)
  await Promise.all(clients.map((c) => c.stop()))
}, 120_000)
