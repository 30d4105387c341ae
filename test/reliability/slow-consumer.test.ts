/** A client that stops reading: once its send buffer passes MAX_SEND_BUFFER_BYTES it is closed 4408, the turn goes on, and it resumes the full answer. */
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testConfig } from '../../src/config.js'
import { createModel } from '../../src/llm/create-model.js'
import { eventually, startApp, type RunningApp, TestClient } from '../support/app.js'
import { chunk, sse, startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js'
import { deltaText, flushedEvents, isDense } from '../support/reliability.js'

let fake: FakeOpenAI
let server: RunningApp

// ~12 MB of answer in 48 KB chunks: more than the loopback socket buffers can hide, so ws's own buffer grows.
const PIECES = Array.from({ length: 256 }, (_, i) => `${String(i).padStart(4, '0')}${'abcdefghijklmnop'.repeat(3_000)}`)
const ANSWER = PIECES.join('')

beforeAll(async () => {
  fake = await startFakeOpenAI()
  const env = {
    LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model',
    LLM_MAX_RETRIES: '0', DISCONNECT_GRACE_MS: '600000', MAX_SEND_BUFFER_BYTES: '65536'
  }
  server = await startApp({ env, deps: { model: createModel(testConfig(env), pino({ level: 'silent' })) } })
})
afterAll(async () => {
  await server.close()
  await fake.close()
})

describe('slow consumer', () => {
  it('is closed with 4408 while its turn goes on; resuming with after gives it the whole answer', async () => {
    const id = `slow-${process.pid}`
    fake.script(sse([chunk({ role: 'assistant', content: '' }), ...PIECES.map((p) => chunk({ content: p })), chunk({}, { finishReason: 'stop' })]))
    const slow = await TestClient.connect(server.wsUrl(id))
    await slow.waitFor((f) => f.type === 'connected')
    slow.send({ type: 'user_message', content: 'a very long answer please' })
    // Stop reading: frames pile up in the kernel, then in the server's send buffer.
    ;(slow.ws as unknown as { _socket: { pause: () => void } })._socket.pause()

    const log = await eventually(async () => {
      const events = await flushedEvents(server, id)
      return events.some((e) => e.type === 'assistant_message') ? events : null
    }, { timeoutMs: 20_000 })
    const answer = log.find((e) => e.type === 'assistant_message')!
    // The turn was not cancelled by the slow socket: it finished with the whole text.
    expect(answer).toMatchObject({ finishReason: 'stop' })
    expect(answer.content).toBe(ANSWER)

    ;(slow.ws as unknown as { _socket: { resume: () => void } })._socket.resume()
    const { code } = await slow.closed
    expect(code).toBe(4408)
    // What it got before the close is an in-order prefix; it never saw the end of the turn.
    const user = slow.ofType('user_message')[0]
    expect(ANSWER.startsWith(deltaText(slow.frames, user.turnId))).toBe(true)
    expect(slow.ofType('assistant_message')).toHaveLength(0)
    const lost = slow.ofType('delta').length
    expect(lost).toBeLessThan(PIECES.length)

    const back = await TestClient.connect(server.wsUrl(id, Math.max(...slow.stored().map((f) => f.seq))))
    const end = await back.waitTurnEnd(user.turnId)
    expect(end.content).toBe(ANSWER)
    const after = await flushedEvents(server, id)
    expect(isDense(after)).toBe(true)
    expect(after.find((e) => e.type === 'disconnected')?.reason).toMatch(/^4408/)
    await back.close()
  }, 40_000)
})
