/** The real openai SDK behind the socket, against the local fake Chat Completions server: tools, cancel, faults, summaries. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { eventually, joinDeltas, startApp, TestClient, type RunningApp } from '../support/app.js'
import { completion, fail, json, sse, startFakeOpenAI, textChunks, toolCallChunks, usageChunk, type FakeOpenAI } from '../support/fake-openai.js'

let fake: FakeOpenAI
let server: RunningApp
let n = 0
const newId = () => `oa-${Date.now().toString(36)}-${n++}`

const openaiEnv = (grace: string) => ({
  LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test-secret', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model',
  LLM_MAX_RETRIES: '0', LLM_TIMEOUT_MS: '2000', DISCONNECT_GRACE_MS: grace, MAX_TOOL_STEPS: '2'
})

beforeAll(async () => {
  fake = await startFakeOpenAI()
  // A long grace: no session ends (and asks for a summary) in the middle of another test's script.
  server = await startApp({ env: openaiEnv('600000') })
})
afterAll(async () => {
  await server.close()
  await fake.close()
})
afterEach(() => { expect(fake.pending()).toBe(0) })

describe('the openai model over the socket', () => {
  it('streams a tool call assembled from fragments, runs it, sends the result back and streams the answer', async () => {
    const before = fake.requests.length
    fake.script(
      sse(toolCallChunks([{ id: 'call_1', name: 'fetch_user_profile', args: '{"userId":"alice"}' }], { splitArgsInto: 4 })),
      sse([...textChunks('Alice is on the pro plan.'), usageChunk({ prompt: 50, completion: 7 })])
    )
    const client = await TestClient.connect(server.wsUrl(newId()))
    const session = await client.waitFor((f) => f.type === 'session')
    expect(session.model).toEqual({ provider: 'openai-compatible', name: 'fake-model', offline: false })
    client.send({ type: 'user_message', content: 'Who is alice?' })
    const done = await client.waitTurnEnd()
    expect(client.frames.filter((f) => typeof f.seq === 'number').map((f) => f.type))
      .toEqual(['connected', 'user_message', 'tool_call', 'tool_result', 'assistant_message'])
    expect(client.ofType('tool_call')[0]).toMatchObject({ callId: 'call_1', name: 'fetch_user_profile', arguments: { userId: 'alice' } })
    expect(client.ofType('tool_result')[0]).toMatchObject({ callId: 'call_1', ok: true, result: { userId: 'alice' } })
    expect(done).toMatchObject({ finishReason: 'stop', content: 'Alice is on the pro plan.', usage: { promptTokens: 50, completionTokens: 7, totalTokens: 57 } })
    expect(joinDeltas(client.frames, done.turnId)).toBe(done.content)

    const second = fake.requests[before + 1].body
    expect(second.stream).toBe(true)
    const toolMessage = second.messages.find((m: { role: string }) => m.role === 'tool')
    expect(toolMessage.tool_call_id).toBe('call_1')
    expect(JSON.parse(toolMessage.content)).toMatchObject({ userId: 'alice', name: expect.any(String) })
    expect(fake.requests[before].body.tools.map((t: { function: { name: string } }) => t.function.name).sort())
      .toEqual(['fetch_user_profile', 'get_system_metrics'])
    await client.close()
  })

  it('cancel mid-stream closes the upstream connection and stores the partial text as cancelled', async () => {
    const before = fake.requests.length
    fake.script(sse(textChunks('one two three four five six seven eight nine ten eleven twelve'), { delayMs: 60 }))
    const client = await TestClient.connect(server.wsUrl(newId()))
    client.send({ type: 'user_message', content: 'count slowly' })
    await client.waitFor((f) => f.type === 'delta' && f.index === 2)
    const turnId = client.ofType('user_message')[0].turnId
    client.send({ type: 'cancel', turnId })
    const done = await client.waitTurnEnd(turnId)
    expect(done.finishReason).toBe('cancelled')
    expect(done.content.length).toBeGreaterThan(0)
    expect(done.content).toBe(joinDeltas(client.frames, turnId))
    expect('one two three four five six seven eight nine ten eleven twelve'.startsWith(done.content)).toBe(true)
    expect(done.content).not.toContain('twelve')
    const closed = await fake.clientClosed(before)
    expect(closed.aborted).toBe(true)
    await client.close()
  })

  it('upstream 500 → error llm_unavailable (retryable), assistant_message error, and the session stays usable', async () => {
    fake.script(fail(500), sse(textChunks('Back again.')))
    const client = await TestClient.connect(server.wsUrl(newId()))
    client.send({ type: 'user_message', content: 'hello?' })
    const done = await client.waitTurnEnd()
    const err = client.ofType('error')[0]
    expect(err).toMatchObject({ code: 'llm_unavailable', retryable: true, turnId: done.turnId })
    expect(err.seq).toBe(done.seq - 1)
    expect(done).toMatchObject({ finishReason: 'error', content: '' })
    client.send({ type: 'user_message', content: 'try again' })
    const next = await client.waitFor((f) => f.type === 'assistant_message' && f.turnId !== done.turnId)
    expect(next).toMatchObject({ finishReason: 'stop', content: 'Back again.' })
    await client.close()
  })

  it('a stream cut mid-answer → llm_error with the partial text stored', async () => {
    fake.script(sse(textChunks('alpha beta gamma delta epsilon'), { cutAfter: 3 }))
    const id = newId()
    const client = await TestClient.connect(server.wsUrl(id))
    client.send({ type: 'user_message', content: 'greek letters' })
    const done = await client.waitTurnEnd()
    expect(client.ofType('error')[0]).toMatchObject({ code: 'llm_error', turnId: done.turnId })
    expect(done).toMatchObject({ finishReason: 'error', content: 'alpha beta ' })
    await client.close()
  })

  it('tool arguments nested 6000 deep (valid JSON) are recorded raw and fail that call only; the turn goes on', async () => {
    const deep = `{"userId":${'['.repeat(6000)}${']'.repeat(6000)}}`
    const before = fake.requests.length
    fake.script(
      sse(toolCallChunks([{ id: 'c1', name: 'get_system_metrics', args: '{}' }, { id: 'c2', name: 'fetch_user_profile', args: deep }])),
      sse(textChunks('One call worked, one did not.'))
    )
    const client = await TestClient.connect(server.wsUrl(newId()))
    client.send({ type: 'user_message', content: 'go' })
    const done = await client.waitTurnEnd()
    expect(done).toMatchObject({ finishReason: 'stop', content: 'One call worked, one did not.' })
    expect(client.ofType('error')).toEqual([])
    const calls = client.ofType('tool_call')
    expect(calls.map((c) => c.callId)).toEqual(['c1', 'c2'])
    expect(calls[0].arguments).toEqual({})
    expect(calls[1].arguments).toBe(deep)
    // Results arrive as the calls finish (the refused one first).
    const results = [...client.ofType('tool_result')].sort((a, b) => String(a.callId).localeCompare(String(b.callId)))
    expect(results.map((r) => [r.callId, r.ok])).toEqual([['c1', true], ['c2', false]])
    expect(results[1].error).toMatch(/Invalid arguments for fetch_user_profile/)
    // The model got both results back in the next request.
    const followUp = fake.requests[before + 1].body.messages.filter((m: { role: string }) => m.role === 'tool')
    expect(followUp.map((m: { tool_call_id: string }) => m.tool_call_id)).toEqual(['c1', 'c2'])
    await client.close()
  })

  it('stops at MAX_TOOL_STEPS with finishReason tool_limit', async () => {
    const loop = (i: number) => sse(toolCallChunks([{ id: `call_${i}`, name: 'get_system_metrics', args: '{}' }]))
    fake.script(loop(1), loop(2))
    const client = await TestClient.connect(server.wsUrl(newId()))
    client.send({ type: 'user_message', content: 'loop forever' })
    const done = await client.waitTurnEnd()
    expect(done.finishReason).toBe('tool_limit')
    expect(client.ofType('tool_call')).toHaveLength(2)
    expect(client.ofType('tool_result').every((r) => r.ok)).toBe(true)
    await client.close()
  })

  it('on disconnect, summarises with one non-streaming request that carries the transcript', async () => {
    const before = fake.requests.length
    fake.script(
      sse(textChunks('The capital of France is Paris.')),
      json(completion('User asked for the capital of France; the assistant said Paris.'))
    )
    const id = newId()
    const quick = await startApp({ env: openaiEnv('30') })
    const client = await TestClient.connect(quick.wsUrl(id))
    client.send({ type: 'user_message', content: 'What is the capital of France?' })
    await client.waitTurnEnd()
    await client.close()
    const record = await eventually(async () => {
      const body = (await quick.app.inject({ url: `/api/session/${id}` })).json()
      return body.summaryStatus === 'ready' ? body : null
    }).finally(() => quick.close())
    expect(record.summary).toBe('User asked for the capital of France; the assistant said Paris.')
    expect(record.durationMs).toBeGreaterThan(0)
    const summaryRequest = fake.requests[before + 1]
    expect(summaryRequest.body.stream).toBeFalsy()
    const text = JSON.stringify(summaryRequest.body.messages)
    expect(text).toContain('What is the capital of France?')
    expect(text).toContain('The capital of France is Paris.')
  })
})
