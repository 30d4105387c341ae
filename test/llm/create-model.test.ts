/** createModel picks the offline model or an OpenAI-compatible endpoint from config. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { testConfig } from '../../src/config.js'
import { createModel, KEYLESS_PLACEHOLDER } from '../../src/llm/create-model.js'
import { sse, startFakeOpenAI, textChunks, type FakeOpenAI } from '../support/fake-openai.js'

const logger = pino({ level: 'silent' })
let fake: FakeOpenAI
beforeAll(async () => { fake = await startFakeOpenAI() })
afterAll(async () => { await fake.close() })

describe('createModel', () => {
  it('offline by default in tests, with the fault knob applied', async () => {
    const model = createModel(testConfig({ OFFLINE_FAULT: 'fail' }), logger)
    expect(model.info).toEqual({ provider: 'offline', name: 'offline-demo', offline: true })
    const events = []
    for await (const e of model.stream({ messages: [{ role: 'user', content: 'hi' }], tools: [], signal: new AbortController().signal })) events.push(e)
    expect(events).toEqual([expect.objectContaining({ type: 'error', code: 'llm_unavailable' })])
  })

  it('a keyless local endpoint gets a placeholder key and the configured model', async () => {
    fake.script(sse(textChunks('local model here')))
    const model = createModel(testConfig({ LLM_PROVIDER: 'openai', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'llama3.2', LLM_TEMPERATURE: '0.2' }), logger)
    expect(model.info).toEqual({ provider: 'openai-compatible', name: 'llama3.2', offline: false })
    let text = ''
    for await (const e of model.stream({ messages: [{ role: 'user', content: 'hi' }], tools: [], signal: new AbortController().signal })) if (e.type === 'text') text += e.text
    expect(text).toBe('local model here')
    const req = fake.requests.at(-1)!
    expect(req.headers.authorization).toBe(`Bearer ${KEYLESS_PLACEHOLDER}`)
    expect(req.body).toMatchObject({ model: 'llama3.2', temperature: 0.2 })
  })
})
