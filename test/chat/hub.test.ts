/** Hub edge cases around a slow store: a socket leaving while its session loads, shutdown while a load hangs. */
import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../src/store/memory.js'
import type { StoredEvent } from '../../src/protocol.js'
import type { SessionRepository } from '../../src/store/types.js'
import { eventually, startApp, TestClient, type RunningApp } from '../support/app.js'

/** The real memory store whose event reads wait until released (a database that is slow to answer). */
function slowReads (): { store: SessionRepository; release: () => void } {
  const inner = createMemoryStore()
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const store: SessionRepository = Object.assign(Object.create(inner) as SessionRepository, {
    listEvents: async (id: string, opts: { after: number; limit: number }) => { await gate; return inner.listEvents(id, opts) }
  })
  return { store, release }
}

let server: RunningApp | undefined
afterEach(async () => { await server?.close(); server = undefined })

describe('session hub', () => {
  it('ends a session whose only socket left while it was loading', async () => {
    const { store, release } = slowReads()
    server = await startApp({ env: { DISCONNECT_GRACE_MS: '20' }, deps: { store } })
    const client = await TestClient.connect(server.wsUrl('left-while-loading'))
    await client.close()
    expect(server.app.services.hub.liveCount).toBe(1)
    release()
    await eventually(() => server!.app.services.hub.liveCount === 0)
    const record = await store.getSession('left-while-loading')
    // Its row came with its lease (two instances must not both number a brand-new session): ended with nothing in it.
    await eventually(async () => (await store.getSession('left-while-loading'))?.summaryStatus === 'ready')
    expect(await store.getSession('left-while-loading')).toMatchObject({ status: 'ended', lastSeq: 0, messageCount: 0, summary: 'No messages were exchanged in this session.' })
    expect(record).toMatchObject({ status: 'ended', lastSeq: 0 })
  })

  it('after a restart recovers every active session, over several pages, sessions of one millisecond included', async () => {
    const store = createMemoryStore()
    const base = Date.UTC(2026, 0, 1)
    // 1,205 sessions left active by a process that died; 7 start in each millisecond, so ties straddle the pages of 500.
    const ids = Array.from({ length: 1_205 }, (_, i) => `orphan-${String(i).padStart(4, '0')}`)
    await store.appendEvents(ids.map((sessionId, i) => ({
      sessionId,
      event: { type: 'connected', seq: 1, ts: new Date(base + Math.floor(i / 7)).toISOString(), connectionId: 'c' } satisfies StoredEvent
    })))
    server = await startApp({ env: { DISCONNECT_GRACE_MS: '10' }, deps: { store } })
    await eventually(async () => (await store.listSessions({ limit: 2_000, status: 'active' })).length === 0, { timeoutMs: 20_000 })
    const ended = await store.listSessions({ limit: 2_000, status: 'ended' })
    expect(ended.filter((s) => s.id.startsWith('orphan-')).length).toBe(1_205)
  })

  it('shuts down within the bound while a session load hangs, refusing its socket with 1012', async () => {
    const { store, release } = slowReads()
    server = await startApp({ env: { DURABLE_WAIT_MS: '200' }, deps: { store } })
    const client = await TestClient.connect(server.wsUrl('hanging-load'))
    const t0 = performance.now()
    const closing = server.app.close()
    await closing
    expect(performance.now() - t0).toBeLessThan(2_000)
    release()
    expect([1012, 1006]).toContain((await client.closed).code)
    server = undefined
  })
})

describe('a session being handed over (drain)', () => {
  it('numbers, stores and sends nothing once retired: a late join or message leaves no seq the next owner could reuse', async () => {
    server = await startApp()
    const client = await TestClient.connect(server.wsUrl('retired'))
    const joined = await client.waitFor((f) => f.type === 'connected')
    const session = server.app.services.hub.session('retired')!
    session.retire()
    expect(session.record({ type: 'connected', connectionId: 'late' }).seq).toBe(0)
    client.send({ type: 'user_message', content: 'too late', clientId: 'late-1' })
    const late = await TestClient.connect(server.wsUrl('retired', 0))
    await late.waitFor((f) => f.type === 'session')
    await server.app.services.writer.flush()
    const stored = (await server.app.services.store.listEvents('retired', { after: 0, limit: 100 })).map((e) => e.seq)
    expect(stored).toEqual([joined.seq])
    expect(session.storedSeq).toBe(joined.seq)
    expect(client.frames.filter((f) => typeof f.seq === 'number').map((f) => f.seq)).toEqual([joined.seq])
    await Promise.all([client.close(), late.close()])
  })
})
