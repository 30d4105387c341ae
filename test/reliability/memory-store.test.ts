/** The memory store forgets: ended sessions past MEMORY_MAX_SESSIONS or MEMORY_SESSION_TTL_MS go, oldest first; live ones stay. */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../src/store/memory.js'
import { startApp, TestClient, type RunningApp } from '../support/app.js'

// `--expose-gc` for this file only: set at run time, then `gc` is read from a fresh context.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const apps: RunningApp[] = []
afterAll(async () => { await Promise.all(apps.map((a) => a.close())) })

const EVENTS = 10
const CHARS = 20_000
const at = (ms: number) => new Date(Date.UTC(2030, 0, 1) + ms).toISOString()
/** A distinct text per event, so no two events share a string. */
const text = (session: number, seq: number) => `${session}:${seq}:`.padEnd(CHARS, String.fromCharCode(97 + ((session + seq) % 26)))

describe('MEMORY_MAX_SESSIONS', () => {
  it('200 sessions ended with a limit of 50: the newest 50 are kept, REST answers 404 for the rest, the heap returns within a bound after GC', async () => {
    const server = await startApp({ env: { MEMORY_MAX_SESSIONS: '50' } })
    apps.push(server)
    const { store } = server.app.services
    const id = (i: number) => `mem-${process.pid}-${i}`
    gc()
    const baseline = process.memoryUsage().heapUsed
    for (let i = 0; i < 200; i++) {
      const batch = Array.from({ length: EVENTS }, (_, k) => ({
        sessionId: id(i),
        event: { type: 'user_message' as const, seq: k + 1, ts: at(i * 100 + k), turnId: `t${k}`, content: text(i, k) }
      }))
      await store.appendEvents(batch)
      expect(await store.endSession({ sessionId: id(i), endedAt: at(i * 100 + 50) })).toBe(true)
    }
    const status = async (i: number) => (await server.app.inject({ url: `/api/session/${id(i)}` })).statusCode
    for (const i of [0, 1, 75, 149]) expect(await status(i)).toBe(404)
    for (const i of [150, 151, 199]) expect(await status(i)).toBe(200)
    expect((await server.app.inject({ url: `/api/session/${id(10)}/events` })).statusCode).toBe(404)
    const listed = (await server.app.inject({ url: '/api/sessions?limit=100' })).json().sessions as Array<{ id: string }>
    expect(listed.map((s) => s.id).sort()).toEqual(Array.from({ length: 50 }, (_, k) => id(150 + k)).sort())
    const kept = await store.listEvents(id(199), { after: 0, limit: 100 })
    expect(kept.map((e) => e.seq)).toEqual(Array.from({ length: EVENTS }, (_, k) => k + 1))

    // Each event is held once, as its JSON text: 50 sessions × 10 events × 20 KB ≈ 10 MB of one-byte strings.
    // Kept data plus 4 MB of slack; without eviction the growth is about 40 MB.
    gc()
    const grown = process.memoryUsage().heapUsed - baseline
    const keptBytes = 50 * EVENTS * CHARS
    expect(grown).toBeLessThan(keptBytes + 4 * 1024 * 1024)
  })

  it('through real sockets: sessions that end past the limit are forgotten, a live one never', async () => {
    const server = await startApp({ env: { MEMORY_MAX_SESSIONS: '2', DISCONNECT_GRACE_MS: '0' } })
    apps.push(server)
    const live = await TestClient.connect(server.wsUrl(`mem-live-${process.pid}`))
    await live.waitFor((f) => f.type === 'connected')
    const ids = [0, 1, 2].map((i) => `mem-ws-${process.pid}-${i}`)
    for (const sessionId of ids) {
      const c = await TestClient.connect(server.wsUrl(sessionId))
      c.send({ type: 'user_message', content: `hello ${sessionId}` })
      await c.waitTurnEnd()
      await c.close()
      // Grace 0: the session ends once the socket leaves; wait until the store has it ended.
      for (;;) {
        const res = await server.app.inject({ url: `/api/session/${sessionId}` })
        if (res.json().status === 'ended') break
        await new Promise((resolve) => setImmediate(resolve))
      }
    }
    const codes = await Promise.all([...ids, `mem-live-${process.pid}`].map(async (sessionId) => (await server.app.inject({ url: `/api/session/${sessionId}` })).statusCode))
    expect(codes).toEqual([404, 200, 200, 200])
    await live.close()
  })
})

describe('MEMORY_SESSION_TTL_MS', () => {
  it('forgets ended sessions older than the TTL at the next call; active ones and sessions reopened since stay', async () => {
    let now = Date.UTC(2030, 0, 1)
    const store = createMemoryStore({ now: () => now, endedTtlMs: 1_000 })
    const event = (seq: number) => ({ type: 'connected' as const, seq, ts: new Date(now).toISOString(), connectionId: 'c' })
    for (const id of ['old', 'reopened', 'active']) await store.appendEvents([{ sessionId: id, event: event(1) }])
    await store.endSession({ sessionId: 'old', endedAt: new Date(now).toISOString() })
    await store.endSession({ sessionId: 'reopened', endedAt: new Date(now).toISOString() })
    await store.appendEvents([{ sessionId: 'reopened', event: event(2) }])
    now += 999
    expect(await store.getSession('old')).not.toBeNull()
    now += 2
    expect(await store.getSession('old')).toBeNull()
    expect(await store.listEvents('old', { after: 0, limit: 10 })).toEqual([])
    // The old session's summary job went with it (the reopened one keeps its own, as before).
    expect((await store.claimSummaryJobs({ workerId: 'w', limit: 10, leaseMs: 1_000 })).map((j) => j.sessionId)).toEqual(['reopened'])
    expect((await store.getSession('reopened'))?.status).toBe('active')
    expect((await store.getSession('active'))?.status).toBe('active')
  })
})
