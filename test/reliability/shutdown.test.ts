/** Graceful shutdown of the real process on Postgres: SIGTERM during 20 streaming turns → interrupted turns, 1012 closes, writes flushed, exit 0. */
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testConfig } from '../../src/config.js'
import { createStore } from '../../src/store/index.js'
import { TestClient, type Frame } from '../support/app.js'
import { applySchema, createScratchDatabase } from '../support/postgres.js'
import { deltaText, isDense } from '../support/reliability.js'
import { startServerProcess, type ServerProcess } from '../support/server-process.js'

const TURNS = 20
const SHUTDOWN_TIMEOUT_MS = 5_000

let db: { url: string; drop: () => Promise<void> }
let server: ServerProcess | undefined

beforeAll(async () => {
  db = await createScratchDatabase()
  await applySchema(db.url)
})
afterAll(async () => {
  server?.child.kill('SIGKILL')
  await db?.drop()
})

async function storedLog (sessionIds: string[]): Promise<Map<string, Frame[]>> {
  const store = createStore(testConfig({ STORAGE: 'postgres', DATABASE_URL: db.url }), pino({ level: 'silent' }))
  await store.init()
  try {
    const logs = new Map<string, Frame[]>()
    for (const id of sessionIds) logs.set(id, await store.listEvents(id, { after: 0, limit: 1_000 }) as Frame[])
    return logs
  } finally {
    await store.close()
  }
}

describe('SIGTERM', () => {
  it(`during ${TURNS} streaming turns: every turn stored interrupted, every socket closed 1012, nothing lost, exit 0`, async () => {
    server = await startServerProcess({
      STORAGE: 'postgres', DATABASE_URL: db.url, LLM_PROVIDER: 'offline', OFFLINE_TOKEN_DELAY_MS: '40',
      DISCONNECT_GRACE_MS: '600000', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), OFFLINE_FAULT: 'none',
      // No drain of running turns: every one is closed interrupted in front of its sockets (the drain: test/cluster).
      DRAIN_TIMEOUT_MS: '0'
    })
    const ids = Array.from({ length: TURNS }, (_, i) => `shutdown-${process.pid}-${i}`)
    const clients = await Promise.all(ids.map((id) => TestClient.connect(server!.wsUrl(id))))
    clients.forEach((c, i) => c.send({ type: 'user_message', content: `tell me a long story number ${i}` }))
    // Every turn is streaming when the signal comes.
    await Promise.all(clients.map((c) => c.waitFor((f) => f.type === 'delta' && f.index === 2, { timeoutMs: 20_000 })))

    const signalled = Date.now()
    server.child.kill('SIGTERM')
    const ends = await Promise.all(clients.map((c) => c.waitTurnEnd(undefined, 10_000)))
    // Once turns are being closed the server no longer takes sockets: refused with 1012, or not listening at all.
    const late = await TestClient.connect(server.wsUrl(`shutdown-late-${process.pid}`)).then(async (c) => {
      const { code } = await c.closed
      return { code, frames: c.frames }
    }, (err: Error) => ({ code: 0, frames: [] as Frame[], err }))
    const { code, signal } = await server.exited
    const tookMs = Date.now() - signalled
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS)
    expect(late.frames.some((f) => f.type === 'session')).toBe(false)
    if (late.code !== 0) {
      expect(late.code).toBe(1012)
      expect(late.frames).toEqual([expect.objectContaining({ type: 'error', code: 'internal_error' })])
    } else {
      // Fastify answers requests that arrive while it closes with 503 (return503OnClosing) and drops the upgrade socket, or the port is shut.
      expect((late as { err?: Error }).err?.message).toMatch(/HTTP 503|ECONNREFUSED|ECONNRESET|socket hang up/)
    }

    const closes = await Promise.all(clients.map((c) => c.closed))
    expect(closes.map((c) => c.code)).toEqual(Array(TURNS).fill(1012))
    for (const [i, end] of ends.entries()) {
      expect(end.finishReason).toBe('interrupted')
      expect(end.content).toBe(deltaText(clients[i].frames, end.turnId))
      expect(end.content.length).toBeGreaterThan(0)
    }

    // After the process is gone: the flushed log in Postgres, dense, each turn closed once, what the clients saw plus the final disconnect.
    const logs = await storedLog(ids)
    for (const [i, id] of ids.entries()) {
      const log = logs.get(id)!
      expect(isDense(log), id).toBe(true)
      expect(log.map((e) => e.type)).toEqual(['connected', 'user_message', 'assistant_message', 'disconnected'])
      expect(log[2]).toMatchObject({ finishReason: 'interrupted', content: ends[i].content, turnId: ends[i].turnId })
      expect(log[3].reason).toMatch(/restart/)
      expect(log.slice(0, 3)).toEqual(clients[i].stored())
    }
    server = undefined
  }, 60_000)

  it('SIGINT does the same (memory store: checked through the frames the clients got)', async () => {
    server = await startServerProcess({ STORAGE: 'memory', LLM_PROVIDER: 'offline', OFFLINE_TOKEN_DELAY_MS: '40', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), DRAIN_TIMEOUT_MS: '0' })
    const clients = await Promise.all([0, 1, 2].map((i) => TestClient.connect(server!.wsUrl(`sigint-${process.pid}-${i}`))))
    clients.forEach((c) => c.send({ type: 'user_message', content: 'a long story please' }))
    await Promise.all(clients.map((c) => c.waitFor((f) => f.type === 'delta' && f.index === 1, { timeoutMs: 20_000 })))
    server.child.kill('SIGINT')
    expect(await server.exited).toEqual({ code: 0, signal: null })
    for (const c of clients) {
      expect((await c.closed).code).toBe(1012)
      const end = c.ofType('assistant_message')
      expect(end).toHaveLength(1)
      expect(end[0]).toMatchObject({ finishReason: 'interrupted', content: deltaText(c.frames, end[0].turnId) })
      expect(isDense(c.stored())).toBe(true)
    }
    server = undefined
  }, 30_000)

  it('a second SIGTERM during the drain changes nothing: the turn finishes, exit 0', async () => {
    server = await startServerProcess({ STORAGE: 'memory', LLM_PROVIDER: 'offline', OFFLINE_TOKEN_DELAY_MS: '5', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), DRAIN_TIMEOUT_MS: '10000' })
    const client = await TestClient.connect(server.wsUrl(`sigterm2-${process.pid}`))
    client.send({ type: 'user_message', content: 'a long story please' })
    await client.waitFor((f) => f.type === 'delta' && f.index === 1, { timeoutMs: 20_000 })
    server.child.kill('SIGTERM')
    expect((await client.closed).code).toBe(1012)
    server.child.kill('SIGTERM')
    // Before: the first signal's handler was a once, so the second killed the process mid-drain.
    expect(await server.exited).toEqual({ code: 0, signal: null })
    expect(server.output()).toContain('already draining')
    server = undefined
  }, 30_000)
})
