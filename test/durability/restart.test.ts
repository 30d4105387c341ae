/** SIGKILL mid-turn, start again on the same Postgres: the session continues with its history; the open turn is interrupted. */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { TestClient, type Frame } from '../support/app.js'
import { sse, startFakeOpenAI, textChunks, type FakeOpenAI } from '../support/fake-openai.js'
import { applySchema, createScratchDatabase } from '../support/postgres.js'
import { startServerProcess, type ServerProcess } from '../support/server-process.js'

let db: { url: string; drop: () => Promise<void> }
let fake: FakeOpenAI
const running: ServerProcess[] = []

beforeAll(async () => {
  db = await createScratchDatabase()
  await applySchema(db.url)
  fake = await startFakeOpenAI()
})
afterAll(async () => {
  for (const s of running) s.child.kill('SIGKILL')
  await fake?.close()
  await db?.drop()
})

const start = async () => {
  const s = await startServerProcess({
    STORAGE: 'postgres', DATABASE_URL: db.url, LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url,
    LLM_MAX_RETRIES: '0', WRITER_FLUSH_MS: '5', DISCONNECT_GRACE_MS: '600000',
    // The same instance restarted: it takes its own leases back at once (another would wait SESSION_LEASE_MS).
    INSTANCE_ID: 'restarted'
  })
  running.push(s)
  return s
}

it('continues a session after the process was killed mid-turn', async () => {
  const id = `restart-${Date.now().toString(36)}`
  fake.script(
    sse(textChunks('Nice to meet you, Zed.')),
    sse(textChunks('Once upon a time there was a very long story that never got to its end because'), { delayMs: 80 })
  )
  const first = await start()
  const a = await TestClient.connect(first.wsUrl(id))
  a.send({ type: 'user_message', content: 'My name is Zed.' })
  await a.waitTurnEnd()
  a.send({ type: 'user_message', content: 'Tell me a long story.' })
  const story = await a.waitFor((f) => f.type === 'user_message' && f.content === 'Tell me a long story.')
  await a.waitFor((f) => f.type === 'delta' && f.turnId === story.turnId && f.index === 3)
  // Stored events are batched within WRITER_FLUSH_MS; the acked user_message is durable by contract.
  first.child.kill('SIGKILL')
  expect((await first.exited).signal).toBe('SIGKILL')
  await a.closed

  fake.script(sse(textChunks('Your name is Zed.')))
  const second = await start()
  const b = await TestClient.connect(second.wsUrl(id, 0))
  const session = await b.waitFor((f) => f.type === 'session')
  expect(session.resumed).toBe(true)
  const connected = await b.waitFor((f) => f.type === 'connected' && f.seq > session.lastSeq)
  const replay = b.frames.filter((f) => typeof f.seq === 'number' && f.seq < connected.seq)
  // Seqs reserved by the killed process are never used again: increasing, with a gap where it died.
  const seqs = replay.map((f) => f.seq as number)
  expect(seqs).toEqual([...new Set(seqs)].sort((x, y) => x - y))
  const turns = (type: string) => replay.filter((f: Frame) => f.type === type).map((f) => f.content)
  expect(turns('user_message')).toEqual(['My name is Zed.', 'Tell me a long story.'])
  const interrupted = replay.find((f) => f.type === 'assistant_message' && f.turnId === story.turnId)
  expect(interrupted).toMatchObject({ finishReason: 'interrupted' })
  expect(replay.filter((f) => f.type === 'assistant_message')).toHaveLength(2)

  b.send({ type: 'user_message', content: 'What is my name?' })
  const answer = await b.waitFor((f) => f.type === 'assistant_message' && f.seq > connected.seq)
  expect(answer).toMatchObject({ finishReason: 'stop', content: 'Your name is Zed.' })
  const upstream = fake.requests.at(-1)!.body.messages as Array<{ role: string; content: string }>
  expect(upstream.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(['My name is Zed.', 'Tell me a long story.', 'What is my name?'])
  expect(upstream.some((m) => m.role === 'assistant' && m.content === 'Nice to meet you, Zed.')).toBe(true)
  await b.close()
  second.child.kill('SIGTERM')
  expect((await second.exited).code).toBe(0)
})
