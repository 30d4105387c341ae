/**
 * DESIGN §11, one fenced owner per session, with real processes on one Postgres: a second instance's start-up
 * recovery leaves the first one's live sessions alone, and an owner paused past its lease (split brain) writes
 * nothing more once another instance took the session over, and steps down.
 */
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { TestClient, type Frame } from '../support/app.js'
import { completion, json, sse, startFakeOpenAI, textChunks, type FakeOpenAI } from '../support/fake-openai.js'
import { applySchema, createScratchDatabase } from '../support/postgres.js'
import { startServerProcess, type ServerProcess } from '../support/server-process.js'
import { storedEvents, TEST_REDIS_URL, whenReady } from '../support/cluster.js'

let db: { url: string; drop: () => Promise<void> }
let fake: FakeOpenAI
const running: ServerProcess[] = []

beforeAll(async () => {
  db = await createScratchDatabase()
  await applySchema(db.url)
  fake = await startFakeOpenAI()
})
afterAll(async () => {
  for (const s of running) { s.child.kill('SIGCONT'); s.child.kill('SIGKILL') }
  await fake?.close()
  await db?.drop()
})

const start = async (instanceId: string, leaseMs = 10_000, graceMs = 600_000, extra: Record<string, string> = {}): Promise<ServerProcess> => {
  const s = await startServerProcess({
    ...extra,
    STORAGE: 'postgres', DATABASE_URL: db.url, LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url,
    LLM_MAX_RETRIES: '0', WRITER_FLUSH_MS: '5', DISCONNECT_GRACE_MS: String(graceMs), INSTANCE_ID: instanceId, SESSION_LEASE_MS: String(leaseMs)
  })
  running.push(s)
  return s
}

/** Connects until the instance accepts the session (it refuses with 1013 while another instance's lease is live). */
async function connectWhenOwned (server: ServerProcess, url: string): Promise<{ client: TestClient; refusals: number }> {
  for (let refusals = 0; ; refusals++) {
    const client = await TestClient.connect(url)
    const first = await client.until((fs) => fs.find((f) => f.type === 'session' || f.type === 'error'))
    if (first.type === 'session') return { client, refusals }
    expect(first).toMatchObject({ type: 'error', code: 'busy_server' })
    expect((await client.closed).code).toBe(1013)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

it('a second instance starting while the first streams changes nothing of the first one\'s sessions', async () => {
  const id = `own-${Date.now().toString(36)}`
  const answer = 'A long answer that keeps streaming while another instance starts up and recovers what it may.'
  fake.script(sse(textChunks(answer, { perChunk: 3 }), { delayMs: 40 }))
  const first = await start('first')
  const a = await TestClient.connect(first.wsUrl(id))
  a.send({ type: 'user_message', content: 'Talk for a while.' })
  const ack = await a.waitFor((f) => f.type === 'user_message')
  await a.waitFor((f) => f.type === 'delta' && f.index === 2)

  const second = await start('second')
  await whenReady(second)
  // The session is the first instance's: the second refuses a socket for it rather than touching it.
  const b = await TestClient.connect(second.wsUrl(id, 0))
  expect(await b.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'busy_server' })
  expect((await b.closed).code).toBe(1013)

  const done = await a.waitTurnEnd(ack.turnId as string)
  expect(done).toMatchObject({ finishReason: 'stop', content: answer })
  await a.close()
  const stored = await storedEvents(db.url, id)
  expect(stored.filter((e) => e.type === 'assistant_message')).toEqual([done])
  expect(stored.some((e) => e.finishReason === 'interrupted')).toBe(false)
  expect(a.stored().filter((f) => f.type !== 'disconnected')).toEqual(stored.filter((e) => e.type !== 'disconnected'))
  for (const s of [first, second]) s.child.kill('SIGTERM')
  expect((await first.exited).code).toBe(0)
  expect((await second.exited).code).toBe(0)
}, 60_000)

it.each([
  { mode: 'alone', extra: {} as Record<string, string> },
  // Cluster mode: the new instance first asks the paused owner over Redis, gets no answer, and waits out its lease.
  { mode: 'with Redis', extra: { REDIS_URL: TEST_REDIS_URL } }
])('split brain ($mode): an owner paused past its lease writes nothing after the takeover, and steps down', async ({ extra }) => {
  const id = `split-${Date.now().toString(36)}`
  fake.script(
    sse(textChunks('This answer is cut off when its instance is paused, and must never be stored by it later on, not a word.', { perChunk: 2 }), { delayMs: 40 }),
    sse(textChunks('Here with the new owner.'))
  )
  const leaseMs = 1_000
  const old = await start(`old-${process.pid}`, leaseMs, 600_000, extra)
  const a = await TestClient.connect(old.wsUrl(id))
  a.send({ type: 'user_message', content: 'Say a lot.' })
  const ack = await a.waitFor((f) => f.type === 'user_message')
  await a.waitFor((f) => f.type === 'delta' && f.index === 2)
  const before = await storedEvents(db.url, id)

  old.child.kill('SIGSTOP')
  const fresh = await start(`new-${process.pid}`, leaseMs, 600_000, extra)
  const { client: b } = await connectWhenOwned(fresh, fresh.wsUrl(id, 0))
  const interrupted = await b.waitFor((f) => f.type === 'assistant_message' && f.turnId === ack.turnId)
  expect(interrupted).toMatchObject({ finishReason: 'interrupted' })

  old.child.kill('SIGCONT')
  // The old owner finds its lease gone (renewal or a refused write) and closes its sockets so they reconnect.
  expect((await a.closed).code).toBe(1012)
  b.send({ type: 'user_message', content: 'Still there?' })
  const next = await b.waitFor((f) => f.type === 'assistant_message' && f.turnId !== ack.turnId)
  expect(next).toMatchObject({ finishReason: 'stop', content: 'Here with the new owner.' })

  const stored = await storedEvents(db.url, id)
  // What the old owner stored before the pause, then only the new owner's events: every one of them b saw.
  expect(stored.slice(0, before.length)).toEqual(before)
  const later = stored.slice(before.length)
  const seenByB = new Map(b.stored().map((f) => [f.seq, f]))
  for (const e of later) if (e.type !== 'disconnected' && e.type !== 'connected') expect(seenByB.get(e.seq), `seq ${String(e.seq)}`).toEqual(e)
  expect(later.filter((e) => e.type === 'connected' && !b.stored().some((f) => f.seq === e.seq))).toEqual([])
  const aConnection = a.stored().find((f) => f.type === 'connected')!.connectionId
  expect(later.filter((e) => e.connectionId === aConnection)).toEqual([])
  expect(stored.filter((e) => e.type === 'assistant_message' && e.turnId === ack.turnId)).toEqual([interrupted])
  expect(old.output()).toContain('lost the session lease')
  await b.close()
  for (const s of [old, fresh]) s.child.kill('SIGTERM')
  expect((await old.exited).code).toBe(0)
  expect((await fresh.exited).code).toBe(0)
}, 60_000)

it('a run killed under another INSTANCE_ID: its sessions are recovered once their leases lapse, turn interrupted once, summary once', async () => {
  const id = `lapse-${Date.now().toString(36)}`
  fake.script(sse(textChunks('An answer that dies with its process halfway through, never to be finished by it.', { perChunk: 2 }), { delayMs: 40 }))
  // Long enough that the heir starts while the dead run's lease still looks live: recovery must come back for it.
  const leaseMs = 6_000
  const doomed = await start('doomed', leaseMs)
  const a = await TestClient.connect(doomed.wsUrl(id))
  a.send({ type: 'user_message', content: 'Begin.' })
  const ack = await a.waitFor((f) => f.type === 'user_message')
  await a.waitFor((f) => f.type === 'delta' && f.index === 2)
  doomed.child.kill('SIGKILL')
  await doomed.exited

  fake.fallback = json(completion('A short summary.'))
  const heir = await start('heir', leaseMs, 100)
  const started = Date.now()
  // No socket comes back: recovery alone takes the session once the dead run's lease lapsed, and ends it.
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  let row: { status: string; summary_status: string; version: number } | undefined
  try {
    for (;;) {
      row = (await client.query<{ status: string; summary_status: string; version: number }>('select status, summary_status, version from sessions where id = $1', [id])).rows[0]
      if (row?.summary_status === 'ready' || row?.summary_status === 'failed' || Date.now() - started > 20_000) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  } finally {
    await client.end()
  }
  expect(row).toMatchObject({ status: 'ended', version: 1, summary_status: 'ready' })
  expect(Date.now() - started).toBeLessThan(leaseMs + 5_000 + 5_000)
  const stored = await storedEvents(db.url, id)
  expect(stored.filter((e) => e.type === 'assistant_message')).toEqual([expect.objectContaining({ turnId: ack.turnId, finishReason: 'interrupted' })])
  // Taken once the lease lapsed: by the recheck or the sweep, or by start-up recovery when the heir started later.
  expect(heir.output()).toMatch(/recovered a session whose owner stopped renewing its lease|recovering active sessions left by the previous run/)
  heir.child.kill('SIGTERM')
  expect((await heir.exited).code).toBe(0)
}, 60_000)
