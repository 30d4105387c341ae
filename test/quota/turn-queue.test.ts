/** MAX_CONCURRENT_TURNS against the fake OpenAI server: at most N upstream streams, a fair queue, queued turns that end. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { joinDeltas, startApp, TestClient, type Frame, type RunningApp } from '../support/app.js'
import { sse, startFakeOpenAI, textChunks, type FakeOpenAI } from '../support/fake-openai.js'
import { flushedEvents } from '../support/reliability.js'

let fake: FakeOpenAI
let n = 0
const newId = () => `queue-${process.pid}-${n++}`
const apps: RunningApp[] = []
const ANSWER = Array.from({ length: 12 }, (_, i) => `word${i} `).join('')

beforeAll(async () => { fake = await startFakeOpenAI() })
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()))
  await fake.close()
})

async function app (env: Record<string, string>): Promise<RunningApp> {
  const server = await startApp({
    env: {
      LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model',
      LLM_MAX_RETRIES: '0', DISCONNECT_GRACE_MS: '600000', ...env
    }
  })
  apps.push(server)
  return server
}

/** The user text of the last message of an upstream request: which turn it served. */
const servedFor = (i: number) => fake.requests[i].body.messages.at(-1).content as string

async function connect (server: RunningApp, localAddress: string): Promise<TestClient> {
  const client = await TestClient.connect(server.wsUrl(newId()), { localAddress })
  await client.waitFor((f) => f.type === 'connected')
  return client
}
const positions = (c: TestClient) => c.ofType('queued').map((f) => f.position)

describe('MAX_CONCURRENT_TURNS', () => {
  it('five sessions at once with 2 slots: never more than 2 upstream, the rest queued and served round-robin by address, none lost; a full queue answers busy_server', async () => {
    const server = await app({ MAX_CONCURRENT_TURNS: '2', MAX_QUEUED_TURNS: '3' })
    const first = fake.requests.length
    fake.fallback = () => sse(textChunks(ANSWER), { delayMs: 15 })
    // Address .20 has four sessions, .21 one: round-robin serves .21 before .20's second queued turn.
    const [a1, a2, a3, a4, b1] = await Promise.all([
      connect(server, '127.0.0.20'), connect(server, '127.0.0.20'), connect(server, '127.0.0.20'), connect(server, '127.0.0.20'), connect(server, '127.0.0.21')
    ])
    a1.send({ type: 'user_message', content: 'a1' })
    a2.send({ type: 'user_message', content: 'a2' })
    await fake.request(first + 1)
    a3.send({ type: 'user_message', content: 'a3' })
    await a3.waitFor((f) => f.type === 'queued')
    a4.send({ type: 'user_message', content: 'a4' })
    await a4.waitFor((f) => f.type === 'queued')
    b1.send({ type: 'user_message', content: 'b1' })
    const queuedB = await b1.waitFor((f) => f.type === 'queued')
    // The queue is full (3): a sixth message is refused, not stored, not run.
    const c1 = await connect(server, '127.0.0.22')
    c1.send({ type: 'user_message', content: 'c1', clientId: 'c1' })
    const busy = await c1.waitFor((f) => f.type === 'error')
    expect(busy).toMatchObject({ code: 'busy_server', retryable: true })
    expect(busy.retryAfterMs).toBeGreaterThan(0)
    expect(busy.seq).toBeUndefined()

    const clients = [a1, a2, a3, a4, b1]
    const ends = await Promise.all(clients.map((c) => c.waitTurnEnd()))
    for (const [i, end] of ends.entries()) {
      expect(end.finishReason).toBe('stop')
      expect(end.content).toBe(ANSWER)
      expect(joinDeltas(clients[i].frames, end.turnId)).toBe(ANSWER)
    }
    expect(fake.maxInFlight).toBe(2)
    expect(fake.requests.length - first).toBe(5)
    expect(Array.from({ length: 5 }, (_, i) => servedFor(first + i)).slice(2)).toEqual(['a3', 'b1', 'a4'])
    // Places as they moved: a3 first; a4 second, then third once b1 took its round; b1 second.
    expect(positions(a3)).toEqual([1])
    expect(positions(a4)).toEqual([2, 3, 2, 1])
    expect(queuedB).toMatchObject({ position: 2, turnId: b1.ofType('user_message')[0].turnId })
    expect(positions(a1)).toEqual([])
    // The queued frame comes after the user_message it is about, before the first delta.
    const order = (c: TestClient) => c.frames.map((f: Frame) => f.type).filter((t) => ['user_message', 'queued', 'delta'].includes(t))
    expect(order(b1).slice(0, 3)).toEqual(['user_message', 'queued', 'queued'])
    expect((await flushedEvents(server, c1SessionId(c1))).filter((e) => e.type === 'user_message')).toEqual([])
    expect(server.app.services.slots.stats()).toMatchObject({ running: 0, queued: 0 })
    await Promise.all([...clients, c1].map((c) => c.close()))
  })

  it('a queued turn that is cancelled ends with its one assistant_message cancelled, never reaches upstream, and frees its place', async () => {
    const server = await app({ MAX_CONCURRENT_TURNS: '1', MAX_QUEUED_TURNS: '1' })
    const first = fake.requests.length
    fake.script(sse(textChunks('held'), { hangAfter: 1 }), sse(textChunks('next answer')))
    const [a, b, c] = await Promise.all([connect(server, '127.0.0.23'), connect(server, '127.0.0.24'), connect(server, '127.0.0.25')])
    a.send({ type: 'user_message', content: 'hold the slot' })
    await fake.request(first)
    b.send({ type: 'user_message', content: 'wait' })
    const queued = await b.waitFor((f) => f.type === 'queued')
    b.send({ type: 'cancel' })
    const end = await b.waitTurnEnd(queued.turnId)
    expect(end).toMatchObject({ finishReason: 'cancelled', content: '' })
    // Its place is free again: c queues instead of being refused.
    c.send({ type: 'user_message', content: 'after' })
    expect(await c.waitFor((f) => f.type === 'queued')).toMatchObject({ position: 1 })
    a.send({ type: 'cancel' })
    expect((await a.waitTurnEnd()).finishReason).toBe('cancelled')
    expect((await c.waitTurnEnd()).content).toBe('next answer')
    expect(fake.requests.slice(first).map((_, i) => servedFor(first + i))).toEqual(['hold the slot', 'after'])
    const log = await flushedEvents(server, sessionIdOf(b))
    expect(log.filter((e) => e.type === 'assistant_message').map((e) => e.finishReason)).toEqual(['cancelled'])
    expect(server.app.services.slots.stats()).toMatchObject({ running: 0, queued: 0 })
    await Promise.all([a, b, c].map((x) => x.close()))
  })

  it('/protocol.json publishes the queued frame and the busy_server code', async () => {
    const server = await app({})
    const protocol = (await server.app.inject({ url: '/protocol.json' })).body
    expect(protocol).toContain('"busy_server"')
    const schema = JSON.parse(protocol) as { serverFrame: { anyOf: Array<{ properties?: { type?: { const?: string } } }> } }
    expect(schema.serverFrame.anyOf.some((f) => f.properties?.type?.const === 'queued')).toBe(true)
  })

  it('shutdown while turns are queued: each is stored interrupted and its slot released', async () => {
    const server = await app({ MAX_CONCURRENT_TURNS: '1' })
    const first = fake.requests.length
    fake.script(sse(textChunks('held'), { hangAfter: 1 }))
    const [a, b] = await Promise.all([connect(server, '127.0.0.26'), connect(server, '127.0.0.27')])
    a.send({ type: 'user_message', content: 'hold the slot' })
    await fake.request(first)
    b.send({ type: 'user_message', content: 'wait' })
    await b.waitFor((f) => f.type === 'queued')
    await server.close()
    expect(b.ofType('assistant_message').map((f) => f.finishReason)).toEqual(['interrupted'])
    expect(a.ofType('assistant_message').map((f) => f.finishReason)).toEqual(['interrupted'])
    expect((await b.closed).code).toBe(1012)
    expect(fake.requests.length - first).toBe(1)
    expect(server.app.services.slots.stats()).toMatchObject({ running: 0, queued: 0 })
  })
})

function sessionIdOf (c: TestClient): string { return c.frames.find((f) => f.type === 'session')!.sessionId }
const c1SessionId = sessionIdOf
