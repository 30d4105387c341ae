/** Disconnect is not cancel: the turn runs on through DISCONNECT_GRACE_MS; at its end the upstream is aborted, the turn stored cancelled, the session ended once. */
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testConfig } from '../../src/config.js'
import { createModel } from '../../src/llm/create-model.js'
import { eventually, startApp, type RunningApp, TestClient } from '../support/app.js'
import { completion, json, sse, startFakeOpenAI, textChunks, type FakeOpenAI } from '../support/fake-openai.js'
import { deltaText, flushedEvents, isDense, tapModel, textsReach } from '../support/reliability.js'

const LONG = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ')

let fake: FakeOpenAI
let n = 0
const newId = () => `grace-${process.pid}-${n++}`

beforeAll(async () => { fake = await startFakeOpenAI() })
afterAll(async () => { await fake.close() })

async function openaiApp (grace: number) {
  const env = {
    LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model',
    LLM_MAX_RETRIES: '0', LLM_TIMEOUT_MS: '5000', DISCONNECT_GRACE_MS: String(grace), SUMMARY_POLL_MS: '20'
  }
  const tap = tapModel(createModel(testConfig(env), pino({ level: 'silent' })))
  const server = await startApp({ env, deps: { model: tap.model } })
  return { server, tap }
}

const session = async (server: RunningApp, id: string) => (await server.app.inject({ url: `/api/session/${id}` })).json()
const summaryRequests = (from: number) => fake.requests.slice(from).filter((r) => r.body?.stream !== true)

describe('disconnect grace', () => {
  it('keeps streaming while no socket is attached; a reconnect within the grace resumes the same turn', async () => {
    const { server, tap } = await openaiApp(600_000)
    try {
      const id = newId()
      const first = fake.requests.length
      fake.script(sse(textChunks(LONG), { delayMs: 15 }))
      const a = await TestClient.connect(server.wsUrl(id))
      a.send({ type: 'user_message', content: 'stream a long one' })
      const user = await a.waitFor((f) => f.type === 'user_message')
      await a.waitFor((f) => f.type === 'delta' && f.index === 3)
      await a.terminate()
      await eventually(async () => (await flushedEvents(server, id)).some((e) => e.type === 'disconnected'))
      // Nobody is attached now, and the model keeps streaming into the turn.
      const atDetach = tap.texts()
      await textsReach(tap, atDetach + 10)
      const seen = Math.max(...a.stored().map((f) => f.seq))
      const b = await TestClient.connect(server.wsUrl(id, seen))
      const end = await b.waitTurnEnd(user.turnId)
      expect(end).toMatchObject({ finishReason: 'stop', content: LONG })
      const replayed = b.frames.filter((f) => f.type === 'delta' && f.index < atDetach + 10)
      expect(replayed.length).toBeGreaterThanOrEqual(atDetach + 10)
      expect(deltaText(b.frames, user.turnId)).toBe(LONG)
      expect(fake.requests[first]).toMatchObject({ aborted: false, finished: true })
      expect((await session(server, id)).status).toBe('active')
      await b.close()
    } finally {
      await server.close()
    }
  })

  it('when the grace ends with nobody back: upstream aborted, turn stored cancelled with its partial text, session ended, one summary', async () => {
    const { server, tap } = await openaiApp(250)
    try {
      const id = newId()
      const first = fake.requests.length
      fake.script(sse(textChunks(LONG), { delayMs: 20 }), json(completion('They asked for a long stream and left.')))
      const a = await TestClient.connect(server.wsUrl(id))
      a.send({ type: 'user_message', content: 'stream a long one, I will leave' })
      const user = await a.waitFor((f) => f.type === 'user_message')
      await a.waitFor((f) => f.type === 'delta' && f.index === 2)
      const left = Date.now()
      await a.close()
      const atDetach = tap.texts()

      await fake.clientClosed(first)
      expect(Date.now() - left).toBeGreaterThanOrEqual(200)
      // The turn ran on during the grace: more text arrived after the socket left.
      expect(tap.texts()).toBeGreaterThan(atDetach)
      const record = await eventually(async () => {
        const s = await session(server, id)
        return s.summaryStatus === 'ready' ? s : null
      })
      expect(record).toMatchObject({ status: 'ended', summary: 'They asked for a long stream and left.' })
      const log = await flushedEvents(server, id)
      expect(isDense(log)).toBe(true)
      expect(log.map((e) => e.type)).toEqual(['connected', 'user_message', 'disconnected', 'assistant_message'])
      const stored = log[3]
      expect(stored).toMatchObject({ turnId: user.turnId, finishReason: 'cancelled' })
      expect(stored.content.length).toBeGreaterThan(deltaText(a.frames, user.turnId).length)
      expect(LONG.startsWith(stored.content)).toBe(true)
      expect(stored.content).not.toBe(LONG)
      expect(summaryRequests(first)).toHaveLength(1)
      expect(fake.requests).toHaveLength(first + 2)
      expect(server.app.services.hub.liveCount).toBe(0)
    } finally {
      await server.close()
    }
  })

  it('several sockets leaving and coming back within the grace: the session ends once, with one summary', async () => {
    const { server } = await openaiApp(400)
    try {
      const id = newId()
      const first = fake.requests.length
      fake.script(sse(textChunks('short answer')), json(completion('One visit.')))
      const a = await TestClient.connect(server.wsUrl(id))
      const b = await TestClient.connect(server.wsUrl(id))
      a.send({ type: 'user_message', content: 'hi' })
      await b.waitTurnEnd()
      await Promise.all([a.close(), b.close()])
      const c = await TestClient.connect(server.wsUrl(id, 0))
      await c.waitCount(3, (f) => f.type === 'disconnected' || (f.type === 'connected' && f.seq > (c.frames[0]?.lastSeq ?? Infinity)))
      await c.close()
      const d = await TestClient.connect(server.wsUrl(id))
      await d.waitFor((f) => f.type === 'connected')
      await d.terminate()
      const record = await eventually(async () => {
        const s = await session(server, id)
        return s.summaryStatus === 'ready' ? s : null
      })
      expect(record).toMatchObject({ status: 'ended', summary: 'One visit.' })
      // Every detach restarted the same timer: no second end, no second job.
      await server.app.services.writer.flush(5_000)
      expect(summaryRequests(first)).toHaveLength(1)
      const log = await flushedEvents(server, id)
      expect(isDense(log)).toBe(true)
      expect(log.filter((e) => e.type === 'connected')).toHaveLength(4)
      expect(log.filter((e) => e.type === 'disconnected')).toHaveLength(4)
    } finally {
      await server.close()
    }
  })
})
