/** Reasoning streams (DESIGN §13) through the real openai SDK and the socket: frames, resume, storage, history. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { eventually, joinDeltas, startApp, storedEvents, TestClient, type Frame, type RunningApp } from '../support/app.js'
import { chunk, reasoningChunks, sse, startFakeOpenAI, textChunks, toolCallChunks, type FakeOpenAI } from '../support/fake-openai.js'

let fake: FakeOpenAI
let server: RunningApp
let n = 0
const newId = () => `rs-${Date.now().toString(36)}-${n++}`

beforeAll(async () => {
  fake = await startFakeOpenAI()
  server = await startApp({
    env: {
      LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model',
      LLM_MAX_RETRIES: '0', LLM_TIMEOUT_MS: '5000', DISCONNECT_GRACE_MS: '600000', MAX_TOOL_STEPS: '3'
    }
  })
})
afterAll(async () => {
  await server.close()
  await fake.close()
})
afterEach(() => { expect(fake.pending()).toBe(0) })

/** A turn's reasoning texts by index, checking none is missing or differs between copies. */
function joinReasoning (frames: Frame[], turnId: string): string {
  const byIndex = new Map<number, string>()
  for (const f of frames) {
    if (f.type !== 'reasoning' || f.turnId !== turnId) continue
    const prev = byIndex.get(f.index)
    if (prev !== undefined && prev !== f.text) throw new Error(`reasoning ${f.index} differs between copies`)
    byIndex.set(f.index, f.text)
  }
  const parts: string[] = []
  for (let i = 0; i < byIndex.size; i++) {
    if (!byIndex.has(i)) throw new Error(`reasoning index ${i} missing`)
    parts.push(byIndex.get(i)!)
  }
  return parts.join('')
}

describe('reasoning streams', () => {
  it('reasoning_content: frames before the answer in order, across tool steps, stored whole, never sent back', async () => {
    const before = fake.requests.length
    const think1 = 'The user wants alice. I should look her up. '
    const think2 = 'She is on pro; answer briefly.'
    fake.script(
      sse([...reasoningChunks(think1, 'reasoning_content'), ...toolCallChunks([{ id: 'c1', name: 'fetch_user_profile', args: '{"userId":"alice"}' }])]),
      // A chunk carrying the end of the reasoning and the start of the answer at once: the order still holds.
      sse([...reasoningChunks(think2.slice(0, -6), 'reasoning_content'), chunk({ reasoning_content: think2.slice(-6), content: 'Alice ' }), ...textChunks('is on pro.')])
    )
    const id = newId()
    const client = await TestClient.connect(server.wsUrl(id))
    client.send({ type: 'user_message', content: 'Who is alice?' })
    const done = await client.waitTurnEnd()
    const turnId = done.turnId

    const live = client.frames.filter((f) => f.type === 'reasoning' || f.type === 'delta' || f.type === 'tool_call')
    expect(live.filter((f) => f.type === 'reasoning').map((f) => f.index)).toEqual([...Array(live.filter((f) => f.type === 'reasoning').length).keys()])
    // Step 1's reasoning, the call, step 2's reasoning, then the answer: no delta before the last reasoning frame.
    const kinds = live.map((f) => f.type).join(',').replace(/(reasoning,)+reasoning/g, 'R').replace(/(delta,)+delta|delta/g, 'D')
    expect(kinds).toBe('R,tool_call,R,D')
    expect(joinReasoning(client.frames, turnId)).toBe(think1 + think2)
    expect(joinDeltas(client.frames, turnId)).toBe('Alice is on pro.')
    expect(done).toMatchObject({ content: 'Alice is on pro.', reasoning: think1 + think2, finishReason: 'stop' })
    expect(client.ofType('reasoning').every((f) => f.seq === undefined)).toBe(true)

    // Written in the background: wait for the assistant_message to be stored.
    const stored = await eventually(async () => { const es = await storedEvents(server, id); return es.some((e) => e.type === 'assistant_message') ? es : null })
    // Not stored one by one: only the assistant_message carries it.
    expect(stored.filter((e) => JSON.stringify(e).includes('look her up')).map((e) => e.type)).toEqual(['assistant_message'])

    // The tool step's request and the next turn's request carry none of it.
    fake.script(sse(textChunks('Sure.')))
    client.send({ type: 'user_message', content: 'Thanks' })
    await client.waitFor((f) => f.type === 'assistant_message' && f.turnId !== turnId)
    const toolStep = JSON.stringify(fake.requests[before + 1].body.messages)
    const nextTurn = fake.requests[before + 2].body.messages as Array<Record<string, unknown>>
    expect(toolStep).not.toContain('look her up')
    expect(JSON.stringify(nextTurn)).not.toContain('look her up')
    expect(JSON.stringify(nextTurn)).not.toContain('answer briefly')
    expect(nextTurn.some((m) => 'reasoning' in m || 'reasoning_content' in m)).toBe(false)
    expect(nextTurn.filter((m) => m.role === 'assistant').at(-1)).toEqual({ role: 'assistant', content: 'Alice is on pro.' })
    await client.close()
  })

  it('reasoning (vLLM, OpenRouter): a socket that drops mid-reasoning resumes with every piece by index', async () => {
    const thought = 'one two three four five six seven eight nine ten'
    fake.script(sse([...reasoningChunks(thought, 'reasoning'), ...textChunks('Ten.')], { delayMs: 40 }))
    const id = newId()
    const first = await TestClient.connect(server.wsUrl(id))
    first.send({ type: 'user_message', content: 'count' })
    await first.waitFor((f) => f.type === 'reasoning' && f.index === 2)
    const lastSeq = Math.max(...first.stored().map((f) => f.seq))
    await first.terminate()

    const second = await TestClient.connect(server.wsUrl(id, lastSeq))
    const done = await second.waitTurnEnd()
    // The replay starts at index 0 and the live pieces follow without a gap or a duplicate.
    const indexes = second.ofType('reasoning').map((f) => f.index)
    expect(indexes[0]).toBe(0)
    expect(new Set(indexes).size).toBe(indexes.length)
    expect(joinReasoning(second.frames, done.turnId)).toBe(thought)
    expect(joinDeltas(second.frames, done.turnId)).toBe('Ten.')
    expect(done).toMatchObject({ reasoning: thought, content: 'Ten.', finishReason: 'stop' })
    // Every reasoning frame came before the first delta.
    const firstDelta = second.frames.findIndex((f) => f.type === 'delta')
    expect(second.frames.findLastIndex((f) => f.type === 'reasoning')).toBeLessThan(firstDelta)
    await second.close()
  })

  it('a turn without reasoning stores no reasoning field', async () => {
    fake.script(sse(textChunks('Plain.')))
    const client = await TestClient.connect(server.wsUrl(newId()))
    client.send({ type: 'user_message', content: 'hi' })
    const done = await client.waitTurnEnd()
    expect(done.content).toBe('Plain.')
    expect('reasoning' in done).toBe(false)
    expect(client.ofType('reasoning')).toEqual([])
    await client.close()
  })
})
