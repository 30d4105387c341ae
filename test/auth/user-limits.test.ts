/** DESIGN §10 per-user limits: messages per minute across sessions, sockets per user, the daily token budget (refused, cut, durable). */
import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import pino from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../src/store/memory.js'
import { createPostgresStore } from '../../src/store/postgres.js'
import type { SessionRepository } from '../../src/store/types.js'
import { eventually, joinDeltas, startApp, type Frame, type RunningApp, type TestClient } from '../support/app.js'
import {
  ADMIN_KEY, authEnv, chat, connectAs, msToUtcMidnight, newUser, outcome, restAs, storedEventsAs, type User
} from '../support/auth.js'
import { sse, startFakeOpenAI, textChunks, toolCallChunks, usageChunk, type FakeOpenAI } from '../support/fake-openai.js'
import { applySchema, createScratchDatabase, stopTestDatabase } from '../support/postgres.js'

const sid = (label: string): string => `lim-${label}-${randomUUID()}`
const me = async (server: RunningApp, who: User) => (await restAs(server, who, '/api/me')).json()

/** Sends a message that must be refused, and returns the refusal (the first error frame after it). */
async function refused (client: TestClient, content: string): Promise<Frame> {
  const from = client.frames.length
  client.send({ type: 'user_message', content })
  return await client.waitFor((f) => f.type === 'error', { from })
}

/** The stored log of a session once its socket closed (the writer stores in the background). */
async function logAfterClose (server: RunningApp, who: User, client: TestClient, id: string): Promise<Frame[]> {
  await client.close()
  return await eventually(async () => {
    const events = await storedEventsAs(server, who, id)
    return events?.some((e) => e.type === 'disconnected') ? events : undefined
  })
}

const expectUntilMidnight = (frame: Frame): void => {
  expect(frame).toMatchObject({ type: 'error', code: 'quota_exceeded' })
  expect(frame.seq).toBeUndefined()
  expect(Math.abs(frame.retryAfterMs - msToUtcMidnight())).toBeLessThanOrEqual(2_000)
}

afterAll(stopTestDatabase)

describe('messages per minute per user', () => {
  let server: RunningApp
  beforeAll(async () => { server = await startApp({ env: authEnv({ RATE_MESSAGES_PER_MIN_PER_USER: '3', DISCONNECT_GRACE_MS: '600000' }) }) })
  afterAll(async () => { await server?.close() })

  it("counts a user's messages across sessions: the 4th is refused, another user still sends", async () => {
    const [a, b] = await Promise.all([newUser('alice'), newUser('bob')])
    const sessions = [sid('r1'), sid('r2'), sid('r3')]
    const sockets = await Promise.all(sessions.map((id) => connectAs(server, a, id)))
    for (const [i, socket] of sockets.entries()) {
      expect(await outcome(socket)).toMatchObject({ session: { sessionId: sessions[i] } })
      expect((await chat(socket, `message ${i + 1}`)).finishReason).toBe('stop')
    }
    const error = await refused(sockets[0], 'message 4')
    expect(error).toMatchObject({ code: 'rate_limited', retryable: true, message: expect.stringContaining('user') })
    expect(error.retryAfterMs).toBeGreaterThan(0)
    expect(error.retryAfterMs).toBeLessThanOrEqual(60_000)
    const live = server.app.services.hub.session(sessions[0])!
    expect(live.runningTurnId).toBeNull()
    expect(live.storedSeq).toBe(3) // connected, user_message, assistant_message: message 4 was not stored

    const cb = await connectAs(server, b, sid('rb'))
    const done = await chat(cb, 'my own message')
    expect(done).toMatchObject({ finishReason: 'stop', content: expect.stringContaining('my own message') })
    await Promise.all([...sockets, cb].map((c) => c.close()))
  })
})

describe('sockets per user', () => {
  let server: RunningApp
  beforeAll(async () => { server = await startApp({ env: authEnv({ MAX_SOCKETS_PER_USER: '2', DISCONNECT_GRACE_MS: '600000' }) }) })
  afterAll(async () => { await server?.close() })

  it("refuses a user's third socket (too_many_sockets, 1013) before any session work, until one closes", async () => {
    const [a, b] = await Promise.all([newUser('alice'), newUser('bob')])
    const [s1, s2, s3] = [sid('k1'), sid('k2'), sid('k3')]
    const a1 = await connectAs(server, a, s1)
    const a2 = await connectAs(server, a, s2)
    expect(await outcome(a1)).toMatchObject({ session: { sessionId: s1 } })
    expect(await outcome(a2)).toMatchObject({ session: { sessionId: s2 } })

    const a3 = await connectAs(server, a, s3)
    expect((await a3.closed).code).toBe(1013)
    expect(a3.frames.map((f) => f.type === 'error' ? `error:${f.code}` : f.type)).toEqual(['error:too_many_sockets'])
    expect((await restAs(server, ADMIN_KEY, `/api/session/${s3}`)).statusCode).toBe(404) // not even claimed

    const bs = await connectAs(server, b, sid('kb'))
    expect(await outcome(bs)).toMatchObject({ session: { resumed: false } })

    await a1.close()
    // The server frees the slot when it sees the close (no event reaches the client for it).
    await eventually(() => server.app.services.userSockets.held(a.sub) === 1)
    const a4 = await connectAs(server, a, s3)
    expect(await outcome(a4)).toMatchObject({ session: { sessionId: s3, resumed: false } })
    await Promise.all([a2, a4, bs].map((c) => c.close()))
  })
})

describe('daily token budget', () => {
  let fake: FakeOpenAI
  beforeAll(async () => { fake = await startFakeOpenAI() })
  afterAll(async () => { await fake?.close() })
  afterEach(() => { expect(fake.pending()).toBe(0) })

  const openaiEnv = () => ({
    LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model',
    LLM_MAX_RETRIES: '0', DISCONNECT_GRACE_MS: '600000'
  })
  /** About 2,900 characters: far more tokens than the prompt, so half the total is spent well inside the answer. */
  const LONG = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ') + '.'
  const QUESTION = 'Tell me a very long story.'

  it('refuses a message once today\'s usage reached the budget: quota_exceeded until midnight, nothing stored, no turn', async () => {
    const store = createMemoryStore()
    const a = await newUser('alice')
    const first = await startApp({ env: authEnv(), deps: { store } })
    let spent: number
    try {
      const c = await connectAs(first, a, sid('b1'))
      const done = await chat(c, 'hello budget')
      spent = done.usage.totalTokens
      expect(spent).toBeGreaterThan(0)
      expect(await me(first, a)).toEqual({ principal: a.sub, admin: false, usage: { today: spent, budget: null } })
      await c.close()
    } finally {
      await first.close()
    }

    // A budget of exactly what A spent: A is at it, so the next message is refused.
    const second = await startApp({ env: authEnv({ USER_DAILY_TOKEN_BUDGET: String(spent) }), deps: { store } })
    try {
      expect(await me(second, a)).toEqual({ principal: a.sub, admin: false, usage: { today: spent, budget: spent } })
      const s2 = sid('b2')
      const c = await connectAs(second, a, s2)
      await c.waitFor((f) => f.type === 'connected')
      const from = c.frames.length
      expectUntilMidnight(await refused(c, 'one more please'))
      expect(second.app.services.hub.session(s2)!.runningTurnId).toBeNull()
      expect(c.frames.slice(from).map((f) => f.type)).toEqual(['error'])
      const log = await logAfterClose(second, a, c, s2)
      expect(log.map((e) => e.type)).toEqual(['connected', 'disconnected'])
      expect((await me(second, a)).usage.today).toBe(spent)
    } finally {
      await second.close()
    }
  })

  it('cuts an answer that crosses the budget: finishReason length, a stored quota_exceeded first, the next message refused', async () => {
    // What the whole answer costs (no `usage` from the model: the estimate is counted).
    const calibrate = await startApp({ env: authEnv(openaiEnv()) })
    let whole: number
    try {
      const c = await newUser('carol')
      fake.script(sse(textChunks(LONG)))
      const socket = await connectAs(calibrate, c, sid('cal'))
      expect(await chat(socket, QUESTION)).toMatchObject({ finishReason: 'stop', content: LONG })
      whole = (await me(calibrate, c)).usage.today
      await socket.close()
    } finally {
      await calibrate.close()
    }

    const budget = Math.floor(whole / 2)
    const server = await startApp({ env: authEnv({ ...openaiEnv(), USER_DAILY_TOKEN_BUDGET: String(budget) }) })
    try {
      const a = await newUser('alice')
      const s = sid('cut')
      const n = fake.requests.length
      fake.script(sse(textChunks(LONG), { delayMs: 1 }))
      const socket = await connectAs(server, a, s)
      const done = await chat(socket, QUESTION)
      expect(done.finishReason).toBe('length')
      expect(done.content.length).toBeGreaterThan(0)
      expect(done.content.length).toBeLessThan(LONG.length)
      expect(LONG.startsWith(done.content)).toBe(true)
      expect(joinDeltas(socket.frames, done.turnId).startsWith(done.content)).toBe(true)
      expect((await fake.clientClosed(n)).aborted).toBe(true) // the upstream request was stopped, like a cancel

      const error = socket.stored().find((f) => f.type === 'error')!
      expect(error).toMatchObject({ code: 'quota_exceeded', turnId: done.turnId, retryable: false })
      expect(socket.stored().map((f) => f.type)).toEqual(['connected', 'user_message', 'error', 'assistant_message'])
      const today = (await me(server, a)).usage.today
      expect(today).toBeGreaterThanOrEqual(budget)
      expect(today).toBeLessThan(whole)

      const from = socket.frames.length
      expectUntilMidnight(await refused(socket, 'go on'))
      expect(socket.frames.slice(from).map((f) => f.type)).toEqual(['error'])
      const log = await logAfterClose(server, a, socket, s)
      expect(log.map((e) => [e.type, e.code ?? e.finishReason ?? null])).toEqual([
        ['connected', null], ['user_message', null], ['error', 'quota_exceeded'], ['assistant_message', 'length'], ['disconnected', null]
      ])
      expect(log[3]).toMatchObject({ turnId: done.turnId, content: done.content })
    } finally {
      await server.close()
    }
  })

  it('counts every request of a tool loop: steps that only call tools are cut before the count passes the budget', async () => {
    // What one request with this question costs (its prompt, and a two-character answer).
    const calibrate = await startApp({ env: authEnv(openaiEnv()) })
    let one: number
    try {
      const c = await newUser('dave')
      fake.script(sse(textChunks('ok')))
      const socket = await connectAs(calibrate, c, sid('cal-tools'))
      expect(await chat(socket, QUESTION)).toMatchObject({ finishReason: 'stop' })
      one = (await me(calibrate, c)).usage.today
      await socket.close()
    } finally {
      await calibrate.close()
    }

    // Room for two requests' prompts, never five: each step re-sends the whole context, tool results included.
    const budget = Math.floor(one * 2.5)
    const server = await startApp({ env: authEnv({ ...openaiEnv(), USER_DAILY_TOKEN_BUDGET: String(budget), MAX_TOOL_STEPS: '5' }) })
    const fallback = fake.fallback
    // Every request asks for a tool and writes no text: the stream alone would never trip the budget.
    fake.fallback = (n) => sse(toolCallChunks([{ id: `call_${n}`, name: 'get_system_metrics', args: '{}' }]))
    try {
      const a = await newUser('alice')
      const n = fake.requests.length
      const socket = await connectAs(server, a, sid('tools-cut'))
      const done = await chat(socket, QUESTION)
      const requests = fake.requests.length - n
      expect(done.finishReason).toBe('length')
      expect(requests).toBeGreaterThanOrEqual(1)
      expect(requests).toBeLessThan(3)
      const stored = socket.stored()
      expect(stored.filter((f) => f.type === 'tool_call')).toHaveLength(requests)
      expect(stored.filter((f) => f.type === 'error').map((f) => f.code)).toEqual(['quota_exceeded'])
      const today = (await me(server, a)).usage.today
      expect(today).toBeGreaterThan(0)
      expect(today).toBeLessThanOrEqual(budget)
      await socket.close()
    } finally {
      fake.fallback = fallback
      await server.close()
    }
  })

  it("counts the model's own usage when the answer completes", async () => {
    const server = await startApp({ env: authEnv(openaiEnv()) })
    try {
      const a = await newUser('alice')
      fake.script(sse([...textChunks('Short and exact.'), usageChunk({ prompt: 321, completion: 45 })]))
      const socket = await connectAs(server, a, sid('usage'))
      const done = await chat(socket, 'Say something short.')
      expect(done).toMatchObject({ finishReason: 'stop', content: 'Short and exact.', usage: { promptTokens: 321, completionTokens: 45, totalTokens: 366 } })
      expect(await me(server, a)).toEqual({ principal: a.sub, admin: false, usage: { today: 366, budget: null } })
      await socket.close()
    } finally {
      await server.close()
    }
  })

  it('on Postgres, usage survives a restart and a spent budget is still refused', async () => {
    // What the whole answer costs: the budget lets its request go (a prompt that alone passes what is left is
    // never sent) and is crossed by its text.
    const common = { OFFLINE_TOKEN_DELAY_MS: '1', DISCONNECT_GRACE_MS: '600000', WRITER_FLUSH_MS: '5' }
    const calibrate = await startApp({ env: authEnv(common) })
    let whole: number
    try {
      const c = await newUser('erin')
      const socket = await connectAs(calibrate, c, sid('pg-cal'))
      expect(await chat(socket, 'hello postgres')).toMatchObject({ finishReason: 'stop' })
      whole = (await me(calibrate, c)).usage.today
      await socket.close()
    } finally {
      await calibrate.close()
    }
    const budget = whole - 5
    const db = await createScratchDatabase()
    await applySchema(db.url)
    const logger = pino({ level: 'silent' })
    const env = authEnv({ ...common, USER_DAILY_TOKEN_BUDGET: String(budget) })
    const a = await newUser('alice')
    const s = sid('pg')
    let today: number
    const store1 = createPostgresStore({ connectionString: db.url, poolMax: 4, logger })
    const store2 = createPostgresStore({ connectionString: db.url, poolMax: 4, logger })
    try {
      // Usage writes that take 100 ms, as on a busy database.
      const slowWrites: SessionRepository = { ...store1, addUsage: async (o) => { await delay(100); return await store1.addUsage(o) } }
      const first = await startApp({ env, deps: { store: slowWrites } })
      try {
        // The next message goes out the moment the answer arrives, while the turn's usage (written after that
        // frame) is still on its way to a slow database: it must count already (it once did not, and an
        // over-budget message was admitted and run).
        const socket = await connectAs(first, a, s)
        expect(await chat(socket, 'hello postgres')).toMatchObject({ finishReason: 'length' })
        expectUntilMidnight(await refused(socket, 'again'))
        await socket.close()
        today = (await me(first, a)).usage.today
        expect(today).toBeGreaterThanOrEqual(budget)
      } finally {
        await first.close()
      }
      await store1.close()

      const second = await startApp({ env, deps: { store: store2 } })
      try {
        expect(await me(second, a)).toEqual({ principal: a.sub, admin: false, usage: { today, budget } })
        const socket = await connectAs(second, a, s, 0)
        const types = (await socket.waitFor((f) => f.type === 'connected' && f.seq > 4)) && socket.stored().map((f) => f.type)
        expect(types).toEqual(['connected', 'user_message', 'error', 'assistant_message', 'disconnected', 'connected'])
        const from = socket.frames.length
        expectUntilMidnight(await refused(socket, 'after the restart'))
        expect(socket.frames.slice(from).map((f) => f.type)).toEqual(['error'])
        expect(second.app.services.hub.session(s)!.runningTurnId).toBeNull()
        await socket.close()
        expect((await me(second, a)).usage.today).toBe(today)
      } finally {
        await second.close()
      }
    } finally {
      await store1.close()
      await store2.close()
      await db.drop()
    }
  })
})
