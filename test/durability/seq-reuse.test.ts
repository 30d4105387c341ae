/**
 * DESIGN §11, no seq ever reused: one real process on Postgres, SIGKILLed three times mid-turn while events it sent
 * were not stored yet (writes held at a proxy). No client ever sees two events under one seq, every event a client
 * saw under a stored seq is the stored one, and a resume says `reset` exactly when the client saw a lost event.
 */
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { TestClient, type Frame } from '../support/app.js'
import { sse, startFakeOpenAI, textChunks, type FakeOpenAI } from '../support/fake-openai.js'
import { applySchema, createScratchDatabase, createTcpProxy, withPort, type TcpProxy } from '../support/postgres.js'
import { startServerProcess, type ServerProcess } from '../support/server-process.js'

let db: { url: string; drop: () => Promise<void> }
let proxy: TcpProxy
let fake: FakeOpenAI
const running: ServerProcess[] = []

beforeAll(async () => {
  db = await createScratchDatabase()
  await applySchema(db.url)
  proxy = await createTcpProxy(Number(new URL(db.url).port || 5432))
  fake = await startFakeOpenAI()
})
afterAll(async () => {
  for (const s of running) s.child.kill('SIGKILL')
  await proxy?.close()
  await fake?.close()
  await db?.drop()
})

const start = async (): Promise<ServerProcess> => {
  const s = await startServerProcess({
    STORAGE: 'postgres', DATABASE_URL: withPort(db.url, proxy.port), LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test',
    OPENAI_BASE_URL: fake.url, LLM_MAX_RETRIES: '0', WRITER_FLUSH_MS: '5', DISCONNECT_GRACE_MS: '600000',
    // The same instance restarted: it takes its own leases back at once (another would wait SESSION_LEASE_MS).
    INSTANCE_ID: 'restarted'
  })
  running.push(s)
  return s
}

async function storedEvents (sessionId: string): Promise<Map<number, Frame>> {
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  try {
    const { rows } = await client.query<{ seq: number; payload: Frame }>('select seq, payload from session_events where session_id = $1 order by seq', [sessionId])
    return new Map(rows.map((r) => [r.seq, r.payload]))
  } finally {
    await client.end()
  }
}

/** Every stored event each client received, by seq; two different events under one seq fail at once. */
const seen = new Map<number, string>()
function record (client: TestClient): void {
  for (const f of client.stored()) {
    const json = JSON.stringify(f)
    const before = seen.get(f.seq as number)
    if (before !== undefined) expect(JSON.parse(json), `seq ${String(f.seq)} seen as two different events`).toEqual(JSON.parse(before))
    seen.set(f.seq as number, json)
  }
}
const lastSeq = (client: TestClient): number => Math.max(0, ...client.stored().map((f) => f.seq as number))

it('numbers past every seq a killed process may have sent, and a resume inside lost events says reset', async () => {
  const id = `seqs-${Date.now().toString(36)}`
  let afterA: number | undefined
  let afterC: number | undefined
  const resets: Array<{ who: string; after: number; reset: boolean }> = []

  for (let round = 0; round <= 3; round++) {
    fake.script(sse(textChunks(`Round ${round}: a long answer that is still streaming when the process is killed, word by word.`, { perChunk: 4 }), { delayMs: 60 }))
    const server = await start()
    const a = await TestClient.connect(server.wsUrl(id, afterA))
    const c = await TestClient.connect(server.wsUrl(id, afterC))
    const stored = await storedEvents(id)
    for (const [who, client, after] of [['A', a, afterA], ['C', c, afterC]] as const) {
      const hello = await client.waitFor((f) => f.type === 'session')
      if (after === undefined) continue
      // The oracle: the client saw an event under `after` that the store does not hold.
      const lost = !stored.has(after)
      expect(hello.reset === true, `${who} resuming after ${after} in round ${round}`).toBe(lost)
      resets.push({ who, after, reset: lost })
      // A reset replays from the start; a resume replays what follows `after`: either way the open turn's close.
      await client.waitFor((f) => f.type === 'connected' && f.seq > (hello.lastSeq as number))
    }
    if (round === 3) {
      record(a); record(c)
      await a.close(); await c.close()
      server.child.kill('SIGTERM')
      expect((await server.exited).code).toBe(0)
      break
    }

    a.send({ type: 'user_message', content: `message ${round}` })
    const ack = await a.waitFor((f) => f.type === 'user_message' && f.content === `message ${round}`)
    await a.waitFor((f) => f.type === 'delta' && f.turnId === ack.turnId && f.index === 2)
    // C leaves having seen only stored events (the acked message is durable): its resume must not be a reset.
    await c.waitFor((f) => f.seq === ack.seq)
    record(c)
    afterC = lastSeq(c)
    await c.close()
    // From here the store hangs: what is sent now is lost when the process dies.
    proxy.hold()
    const b = await TestClient.connect(server.wsUrl(id))
    const joined = await b.waitFor((f) => f.type === 'connected')
    await a.waitFor((f) => f.type === 'connected' && f.seq === joined.seq)
    server.child.kill('SIGKILL')
    expect((await server.exited).signal).toBe('SIGKILL')
    await Promise.all([a.closed, b.closed])
    record(a); record(b)
    afterA = lastSeq(a)
    // The dead process's held writes are dropped with its connections, never delivered late.
    await proxy.down()
    proxy.release()
    await proxy.up()
  }

  expect(resets.filter((r) => r.who === 'A').map((r) => r.reset)).toEqual([true, true, true])
  expect(resets.filter((r) => r.who === 'C').map((r) => r.reset)).toEqual([false, false, false])
  const final = await storedEvents(id)
  // Every event a client saw under a stored seq is that stored event; the others were lost, and never reused.
  let lost = 0
  for (const [seq, json] of seen) {
    const event = final.get(seq)
    if (event) expect(event, `seq ${seq}`).toEqual(JSON.parse(json))
    else lost++
  }
  expect(lost).toBeGreaterThanOrEqual(3)
  // Three turns killed, each closed interrupted exactly once; seqs increase.
  const events = [...final.values()]
  const closes = events.filter((e) => e.type === 'assistant_message')
  expect(closes.map((e) => e.finishReason)).toEqual(['interrupted', 'interrupted', 'interrupted'])
  expect(new Set(closes.map((e) => e.turnId)).size).toBe(3)
  expect([...final.keys()]).toEqual([...final.keys()].sort((x, y) => x - y))
})
