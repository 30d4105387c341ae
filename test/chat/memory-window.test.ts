/** A live session keeps only its recent events in memory; resumes and repeated clientIds reach older ones through the store. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually, joinDeltas, startApp, TestClient, type Frame, type RunningApp } from '../support/app.js'
import { sse, startFakeOpenAI, textChunks } from '../support/fake-openai.js'
import { flushedEvents, isDense } from '../support/reliability.js'

const KEEP = 10
let server: RunningApp
let n = 0
const newId = () => `window-${process.pid}-${n++}`

beforeAll(async () => {
  server = await startApp({ env: { SESSION_MEMORY_EVENTS: String(KEEP), OFFLINE_TOKEN_DELAY_MS: '1', DISCONNECT_GRACE_MS: '200', WRITER_FLUSH_MS: '5' } })
})
afterAll(async () => { await server.close() })

const inMemory = (id: string) => server.app.services.hub.session(id)!.events

/** Runs `turns` turns (clientIds m-0, m-1, …) on one socket and returns it with the stored log. */
async function longSession (id: string, turns: number): Promise<{ client: TestClient; stored: Frame[] }> {
  const client = await TestClient.connect(server.wsUrl(id))
  for (let i = 0; i < turns; i++) {
    client.send({ type: 'user_message', content: `message number ${i}`, clientId: `m-${i}` })
    const user = await client.waitFor((f) => f.type === 'user_message' && f.clientId === `m-${i}`)
    await client.waitTurnEnd(user.turnId)
  }
  return { client, stored: await flushedEvents(server, id) }
}

describe('the in-memory window of a live session', () => {
  it('holds at most SESSION_MEMORY_EVENTS (+ a quarter) recent events however long the session runs', async () => {
    const id = newId()
    const { client, stored } = await longSession(id, 16)
    expect(stored.length).toBeGreaterThan(3 * KEEP)
    expect(isDense(stored)).toBe(true)
    const events = inMemory(id)
    expect(events.length).toBeGreaterThanOrEqual(KEEP)
    expect(events.length).toBeLessThan(KEEP + KEEP / 4)
    // The most recent ones, identical to the stored ones.
    expect(events).toEqual(stored.slice(-events.length))
    await client.close()
  })

  it.each([0, 5, 17])('a resume with after=%i replays exactly the missed events, from the store and then memory, then its connected', async (after) => {
    const id = newId()
    const { client, stored } = await longSession(id, 16)
    expect(inMemory(id)[0].seq).toBeGreaterThan(after + 1)
    const b = await TestClient.connect(server.wsUrl(id, after))
    const own = await b.waitFor((f) => f.type === 'connected' && f.seq > stored.length)
    const session = b.frames[0]
    expect(session).toMatchObject({ type: 'session', resumed: true, lastSeq: stored.length })
    const replay = b.stored().filter((f) => f.seq <= stored.length)
    expect(replay).toEqual(stored.slice(after))
    expect(b.frames.slice(1, 1 + replay.length)).toEqual(replay)
    expect(own.seq).toBe(stored.length + 1)
    await Promise.all([client.close(), b.close()])
  })

  it('a resume from the start during a running turn: old events, recent events, the turn\'s reasoning and deltas, connected — in that order', async () => {
    const id = newId()
    const { client, stored } = await longSession(id, 8)
    client.send({ type: 'user_message', content: 'tell me a long story please', clientId: 'last' })
    const user = await client.waitFor((f) => f.type === 'user_message' && f.clientId === 'last')
    await client.waitFor((f) => f.type === 'delta' && f.turnId === user.turnId)
    const b = await TestClient.connect(server.wsUrl(id, 0))
    const done = await b.waitTurnEnd(user.turnId)
    expect(b.frames[0]).toMatchObject({ type: 'session', runningTurnId: user.turnId })
    const types = b.frames.map((f) => f.type)
    // The offline model reasons first: the turn's streamed frames start with its reasoning, then its deltas.
    const firstDelta = types.findIndex((t) => t === 'delta' || t === 'reasoning')
    expect(types[firstDelta]).toBe('reasoning')
    const ownConnected = b.frames.findIndex((f) => f.type === 'connected' && f.seq > user.seq)
    // Every event up to the running turn's user_message, in order, before any delta.
    expect(b.frames.slice(1, firstDelta)).toEqual([...stored, user])
    expect(ownConnected).toBeGreaterThan(firstDelta)
    expect(joinDeltas(b.frames, user.turnId)).toBe(done.content)
    expect(b.ofType('reasoning').map((f) => f.text).join('')).toBe(done.reasoning)
    expect(isDense(b.stored())).toBe(true)
    await Promise.all([client.close(), b.close()])
  })

  it('a repeated clientId whose message has left memory is answered with the stored event and not run again', async () => {
    const id = newId()
    const { client, stored } = await longSession(id, 16)
    const original = stored.find((e) => e.clientId === 'm-0')!
    expect(inMemory(id)[0].seq).toBeGreaterThan(original.seq)
    const before = client.frames.length
    client.send({ type: 'user_message', content: 'message number 0', clientId: 'm-0' })
    const answer = await client.waitFor((f) => f.type === 'user_message', { from: before })
    expect(answer).toEqual(original)
    // Nothing ran: a ping comes back with no turn, and the store has the same log.
    client.send({ type: 'ping' })
    await client.waitFor((f) => f.type === 'pong', { from: before })
    expect(client.frames.slice(before).map((f) => f.type).sort()).toEqual(['pong', 'user_message'])
    expect(await flushedEvents(server, id)).toEqual(stored)
    await client.close()
  })

  it('a session loaded from the store keeps only the window, yet knows every clientId', async () => {
    const id = newId()
    const { client, stored } = await longSession(id, 16)
    await client.close()
    // The grace ends the session and drops it from memory; the next socket loads it from the store.
    await eventually(() => server.app.services.hub.session(id) === undefined)
    const again = await TestClient.connect(server.wsUrl(id))
    await again.waitFor((f) => f.type === 'connected')
    expect(inMemory(id).length).toBeLessThan(KEEP + KEEP / 4)
    const before = again.frames.length
    again.send({ type: 'user_message', content: 'message number 1', clientId: 'm-1' })
    expect(await again.waitFor((f) => f.type === 'user_message', { from: before })).toEqual(stored.find((e) => e.clientId === 'm-1'))
    await again.close()
  })
})

describe('the model context of a long-lived session', () => {
  it('still holds the conversation after more reconnects than SESSION_MEMORY_EVENTS', async () => {
    const fake = await startFakeOpenAI()
    const app = await startApp({
      env: {
        SESSION_MEMORY_EVENTS: String(KEEP), LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url,
        LLM_MAX_RETRIES: '0', DISCONNECT_GRACE_MS: '600000'
      }
    })
    try {
      const id = newId()
      fake.script(sse(textChunks('Nice to meet you, Zed.')), sse(textChunks('You are Zed.')))
      const a = await TestClient.connect(app.wsUrl(id))
      a.send({ type: 'user_message', content: 'My name is Zed.' })
      await a.waitTurnEnd()
      // 2 × 3 KEEP connected/disconnected events between the two turns.
      for (let i = 0; i < 3 * KEEP; i++) {
        const visitor = await TestClient.connect(app.wsUrl(id))
        await visitor.waitFor((f) => f.type === 'connected')
        await visitor.close()
      }
      await eventually(() => app.app.services.hub.session(id)!.events.every((e) => e.type === 'connected' || e.type === 'disconnected'))
      const before = fake.requests.length
      a.send({ type: 'user_message', content: 'What is my name?' })
      await a.waitTurnEnd((await a.waitFor((f) => f.type === 'user_message' && f.content === 'What is my name?')).turnId)
      expect(fake.requests[before].body.messages.slice(1)).toEqual([
        { role: 'user', content: 'My name is Zed.' },
        { role: 'assistant', content: 'Nice to meet you, Zed.' },
        { role: 'user', content: 'What is my name?' }
      ])
      await a.close()
    } finally {
      await app.close()
      await fake.close()
    }
  })
})
