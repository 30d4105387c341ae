/** DESIGN §10 ownership, on every store: another principal's socket is closed 4403 and REST answers 404; admins read everything. */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually, startApp, TestClient, type Frame, type RunningApp } from '../support/app.js'
import {
  ADMIN, ADMIN_KEY, authEnv, chat, connectAs, newUser, outcome, restAs, storedEventsAs, STORE_VARIANTS, type StoreVariant, type User
} from '../support/auth.js'
import { stopTestDatabase } from '../support/postgres.js'

const sid = (label: string): string => `own-${label}-${randomUUID()}`
/** What a refused socket must never have seen: its session frame, a stored event, a delta. */
const leaked = (client: TestClient): Frame[] => client.frames.filter((f) => f.type === 'session' || f.type === 'delta' || typeof f.seq === 'number')
const ids = (body: { sessions: Array<{ id: string }> }): string[] => body.sessions.map((s) => s.id)

afterAll(stopTestDatabase)

describe.each(STORE_VARIANTS)('ownership on the $name store', (variant: StoreVariant) => {
  let data: Awaited<ReturnType<StoreVariant['start']>>
  let server: RunningApp
  const env = authEnv({ DISCONNECT_GRACE_MS: '600000', WRITER_FLUSH_MS: '5' })

  beforeAll(async () => {
    data = await variant.start()
    server = await startApp({ env, deps: { store: data.store } })
  })
  afterAll(async () => {
    await server?.close()
    await data?.stop()
  })

  /** The stored log once it holds `n` events (the writer stores in the background). */
  const logOf = (who: User | string, id: string, n: number): Promise<Frame[]> =>
    eventually(async () => { const events = await storedEventsAs(server, who, id); return events !== null && events.length >= n ? events : undefined })

  it("keeps another user out of a session over the socket and REST; the owner and admins read it", async () => {
    const [a, b] = await Promise.all([newUser('alice'), newUser('bob')])
    const s = sid('a')
    const ca = await connectAs(server, a, s)
    const done = await chat(ca, 'hello from alice')
    expect(done).toMatchObject({ finishReason: 'stop', content: expect.stringContaining('hello from alice') })
    expect(ca.stored().map((f) => [f.seq, f.type])).toEqual([[1, 'connected'], [2, 'user_message'], [3, 'assistant_message']])
    const live = server.app.services.hub.session(s)!
    expect(live.storedSeq).toBe(3)

    // B's socket: 4403 before the session frame; what B sends meanwhile reaches nothing.
    const cb = await connectAs(server, b, s)
    cb.send({ type: 'user_message', content: 'let me in' })
    cb.send({ type: 'cancel' })
    expect((await cb.closed).code).toBe(4403)
    expect(leaked(cb)).toEqual([])
    // A resume from the start: the same refusal, and not one event replayed.
    const rb = await connectAs(server, b, s, 0)
    expect((await rb.closed).code).toBe(4403)
    expect(leaked(rb)).toEqual([])
    expect(live.storedSeq).toBe(3)
    expect(live.runningTurnId).toBeNull()
    expect(ca.stored()).toHaveLength(3)

    // REST as B: 404 as if the session did not exist; B's list holds only B's sessions.
    const asB = await restAs(server, b, `/api/session/${s}`)
    expect(asB.statusCode).toBe(404)
    expect(asB.json()).toEqual({ error: { code: 'SESSION_NOT_FOUND', message: `Session ${s} not found` } })
    const eventsAsB = await restAs(server, b, `/api/session/${s}/events?after=0`)
    expect(eventsAsB.statusCode).toBe(404)
    expect(eventsAsB.json().events).toBeUndefined()
    expect((await restAs(server, b, '/api/sessions')).json()).toEqual({ sessions: [], nextBefore: null })
    const sb = sid('b')
    const cbOwn = await connectAs(server, b, sb)
    expect(await outcome(cbOwn)).toMatchObject({ session: { sessionId: sb, resumed: false } })
    const listB = (await restAs(server, b, '/api/sessions')).json()
    expect(listB.sessions.map((r: Frame) => [r.id, r.owner])).toEqual([[sb, b.sub]])
    // ?owner= is for admins: B naming A still gets only B's own.
    expect(ids((await restAs(server, b, `/api/sessions?owner=${encodeURIComponent(a.sub)}`)).json())).toEqual([sb])

    // As A: all 200; A's list is exactly A's session.
    const asA = await eventually(async () => { const r = (await restAs(server, a, `/api/session/${s}`)).json(); return r.lastSeq === 3 && r })
    expect(asA).toMatchObject({ id: s, owner: a.sub, status: 'active', messageCount: 2, title: 'hello from alice' })
    const eventsAsA = await restAs(server, a, `/api/session/${s}/events?after=0`)
    expect(eventsAsA.statusCode).toBe(200)
    expect(eventsAsA.json().events).toEqual(ca.stored())
    expect(ids((await restAs(server, a, '/api/sessions')).json())).toEqual([s])

    // As admin: any session, everyone's list, ?owner= filters.
    const asAdmin = await restAs(server, ADMIN_KEY, `/api/session/${s}`)
    expect(asAdmin.statusCode).toBe(200)
    expect(asAdmin.json()).toMatchObject({ id: s, owner: a.sub })
    expect((await restAs(server, ADMIN_KEY, `/api/session/${s}/events?after=0`)).json().events).toEqual(ca.stored())
    const all = (await restAs(server, ADMIN_KEY, '/api/sessions?limit=100')).json()
    expect(all.sessions.filter((r: Frame) => r.id === s || r.id === sb).map((r: Frame) => [r.id, r.owner])).toEqual([[sb, b.sub], [s, a.sub]])
    expect(ids((await restAs(server, ADMIN_KEY, `/api/sessions?owner=${encodeURIComponent(a.sub)}`)).json())).toEqual([s])
    expect(ids((await restAs(server, ADMIN_KEY, `/api/sessions?owner=${encodeURIComponent(b.sub)}`)).json())).toEqual([sb])

    // Who is who; A's usage is the model's count for A's one turn.
    const me = async (who: User | string) => (await restAs(server, who, '/api/me')).json()
    expect(done.usage.totalTokens).toBeGreaterThan(0)
    expect(await me(a)).toEqual(
      { principal: a.sub, admin: false, usage: { today: done.usage.totalTokens, budget: null } })
    expect(await me(b)).toEqual({ principal: b.sub, admin: false, usage: { today: 0, budget: null } })
    expect(await me(ADMIN_KEY)).toEqual({ principal: ADMIN, admin: true, usage: { today: 0, budget: null } })

    // The whole stored story of s is A's: B's attempts left no event between A's last one and A's disconnect.
    await ca.close()
    const log = await logOf(a, s, 4)
    expect(log.map((e) => [e.seq, e.type])).toEqual([[1, 'connected'], [2, 'user_message'], [3, 'assistant_message'], [4, 'disconnected']])
    expect(new Set(log.filter((e) => e.connectionId !== undefined).map((e) => e.connectionId))).toEqual(new Set([ca.stored()[0].connectionId]))
    await cbOwn.close()
  })

  it('a session created while auth was off is refused to every user (4403, 404) and readable by admins', async () => {
    const s = sid('anon')
    const open = await startApp({ env: { WRITER_FLUSH_MS: '5' }, deps: { store: data.store } })
    try {
      const c = await TestClient.connect(open.wsUrl(s))
      expect((await chat(c, 'anonymous hello')).finishReason).toBe('stop')
      await c.close()
      await c.closed
    } finally {
      await open.close()
    }

    const authed = await startApp({ env, deps: { store: data.store } })
    try {
      const [a, b] = await Promise.all([newUser('alice'), newUser('bob')])
      for (const who of [a, b]) {
        for (const after of [undefined, 0]) {
          const c = await connectAs(authed, who, s, after)
          expect((await c.closed).code).toBe(4403)
          expect(leaked(c)).toEqual([])
        }
        expect((await restAs(authed, who, `/api/session/${s}`)).statusCode).toBe(404)
        expect((await restAs(authed, who, `/api/session/${s}/events?after=0`)).statusCode).toBe(404)
        expect(ids((await restAs(authed, who, '/api/sessions')).json())).toEqual([])
      }
      const rec = await restAs(authed, ADMIN_KEY, `/api/session/${s}`)
      expect(rec.statusCode).toBe(200)
      expect(rec.json()).toMatchObject({ id: s, owner: null, messageCount: 2, lastSeq: 4, title: 'anonymous hello' })
      const log = await storedEventsAs(authed, ADMIN_KEY, s)
      expect(log!.map((e) => e.type)).toEqual(['connected', 'user_message', 'assistant_message', 'disconnected'])
      const listed = (await restAs(authed, ADMIN_KEY, '/api/sessions?limit=100')).json().sessions.find((r: Frame) => r.id === s)
      expect(listed).toMatchObject({ id: s, owner: null })
    } finally {
      await authed.close()
    }
  })

  it('two users opening one new id at once: exactly one owns it, the other is closed 4403', async () => {
    const users = await Promise.all([newUser('alice'), newUser('bob')])
    const s = sid('race')
    const clients = await Promise.all(users.map((u) => connectAs(server, u, s)))
    const results = await Promise.all(clients.map(outcome))
    const won = results.findIndex((r) => 'session' in r)
    expect(won).toBeGreaterThanOrEqual(0)
    const lost = 1 - won
    expect(results[won]).toMatchObject({ session: { sessionId: s, resumed: false, lastSeq: 0 } })
    expect(results[lost]).toEqual({ closed: 4403 })
    expect(leaked(clients[lost])).toEqual([])
    expect((await restAs(server, ADMIN_KEY, `/api/session/${s}`)).json()).toMatchObject({ id: s, owner: users[won].sub })
    expect((await restAs(server, users[lost], `/api/session/${s}`)).statusCode).toBe(404)
    // The winner's socket is the only one the session saw.
    const winner = clients[won]
    const connected = await winner.waitFor((f) => f.type === 'connected')
    expect(connected.seq).toBe(1)
    await winner.close()
    const log = await logOf(users[won], s, 2)
    expect(log.map((e) => [e.seq, e.type, e.connectionId])).toEqual([[1, 'connected', connected.connectionId], [2, 'disconnected', connected.connectionId]])
  })
})
