/** /metrics moves by exactly what happened: a turn with a tool call, a cancel, a refused frame, a 1009 close, a resume; and who may read it. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../../src/config.js'
import { NO_METER } from '../../src/metrics/meter.js'
import { eventually, startApp, TestClient, type RunningApp } from '../support/app.js'
import { sse, startFakeOpenAI, textChunks, toolCallChunks, usageChunk, type FakeOpenAI } from '../support/fake-openai.js'
import { changes, parseMetrics, sample, type Samples } from '../support/prom.js'

let fake: FakeOpenAI
let server: RunningApp

beforeAll(async () => {
  fake = await startFakeOpenAI()
  server = await startApp({
    env: {
      LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model',
      LLM_MAX_RETRIES: '0', DISCONNECT_GRACE_MS: '600000', MAX_MESSAGE_BYTES: '4096', METRICS_TOKEN: 't'.repeat(32)
    }
  })
})
afterAll(async () => {
  await server?.close()
  await fake?.close()
})

async function scrape (): Promise<Samples> {
  const res = await server.app.inject({ url: '/metrics' })
  expect(res.statusCode).toBe(200)
  expect(res.headers['content-type']).toContain('text/plain')
  return parseMetrics(res.body)
}

/** What moved, without the process metrics (CPU, heap, event loop) that move on their own. */
const moved = async (before: Samples): Promise<Record<string, number>> => {
  const all = changes(before, await scrape())
  return Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith('rtb_') || k.startsWith('gen_ai_')))
}

describe('/metrics', () => {
  it('counts a turn with a tool call exactly, then a cancel, a refused frame, a 1009 close and a resume under their labels', async () => {
    const start = await scrape()
    for (const name of ['rtb_sockets_open', 'rtb_sessions_live', 'rtb_turns_running', 'rtb_store_pending_events']) expect(start.has(name), name).toBe(true)
    expect(start.has('process_cpu_user_seconds_total')).toBe(true)
    for (const status of ['pending', 'running', 'failed']) expect(sample(start, 'rtb_summary_jobs', { status }), status).toBe(0)

    fake.script(
      sse(toolCallChunks([{ id: 'call_1', name: 'fetch_user_profile', args: '{"userId":"alice"}' }])),
      sse([...textChunks('Alice is on the pro plan.'), usageChunk({ prompt: 50, completion: 7 })])
    )
    const client = await TestClient.connect(server.wsUrl('metrics-1'))
    await client.waitFor((f) => f.type === 'connected')
    // Writes settled on both sides, so the pending-events gauge compares exactly too.
    await server.app.services.writer.flush()
    const before = await scrape()
    client.send({ type: 'user_message', content: 'Who is alice?' })
    const done = await client.waitTurnEnd()
    expect(done.finishReason).toBe('stop')
    const deltas = client.ofType('delta').length
    expect(deltas).toBe(6)
    await server.app.services.writer.flush()
    const diff = await moved(before)
    // Store round trips vary with batching: checked apart, then left out of the exact comparison.
    const writes = diff.rtb_store_write_duration_seconds_count
    expect(writes).toBeGreaterThanOrEqual(1)
    for (const k of Object.keys(diff)) if (k.startsWith('rtb_store_write_duration_seconds')) delete diff[k]
    const ttft = diff.rtb_time_to_first_token_seconds_sum
    const tool = diff['rtb_tool_duration_seconds_sum{tool="fetch_user_profile"}']
    const op = diff['gen_ai_client_operation_duration_seconds_sum{gen_ai_operation_name="chat"}']
    const added = diff.rtb_added_latency_seconds_sum
    for (const v of [ttft, tool, op, added]) expect(v).toBeGreaterThan(0)
    const buckets = Object.keys(diff).filter((k) => k.includes('_bucket{'))
    for (const k of buckets) delete diff[k]
    expect(diff).toEqual({
      'rtb_turns_total{finish_reason="stop"}': 1,
      'rtb_model_requests_total{outcome="ok"}': 2,
      'rtb_tool_calls_total{outcome="ok",tool="fetch_user_profile"}': 1,
      rtb_deltas_sent_total: deltas,
      rtb_time_to_first_token_seconds_count: 1,
      rtb_time_to_first_token_seconds_sum: ttft,
      'rtb_tool_duration_seconds_count{tool="fetch_user_profile"}': 1,
      'rtb_tool_duration_seconds_sum{tool="fetch_user_profile"}': tool,
      // Index 0 of the turn is sampled (one delta in 64).
      rtb_added_latency_seconds_count: 1,
      rtb_added_latency_seconds_sum: added,
      'gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat"}': 2,
      'gen_ai_client_operation_duration_seconds_sum{gen_ai_operation_name="chat"}': op,
      'gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_token_type="input"}': 1,
      'gen_ai_client_token_usage_sum{gen_ai_operation_name="chat",gen_ai_token_type="input"}': 50,
      'gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_token_type="output"}': 1,
      'gen_ai_client_token_usage_sum{gen_ai_operation_name="chat",gen_ai_token_type="output"}': 7
    })
    const now = await scrape()
    expect(sample(now, 'rtb_sockets_open')).toBe(1)
    expect(sample(now, 'rtb_sessions_live')).toBe(1)
    expect(sample(now, 'rtb_turns_running')).toBe(0)

    // A cancelled turn: the model request and the turn are counted as cancelled.
    fake.script(sse(textChunks('one two three four five six seven eight nine ten'), { delayMs: 50 }))
    const beforeCancel = await scrape()
    const from = client.frames.length
    client.send({ type: 'user_message', content: 'Count slowly' })
    const first = await client.waitFor((f) => f.type === 'delta', { from })
    expect(sample(await scrape(), 'rtb_turns_running')).toBe(1)
    client.send({ type: 'cancel', turnId: first.turnId })
    expect((await client.waitTurnEnd(first.turnId)).finishReason).toBe('cancelled')
    const afterCancel = await scrape()
    expect(changes(beforeCancel, afterCancel, 'rtb_turns_total')).toEqual({ 'rtb_turns_total{finish_reason="cancelled"}': 1 })
    expect(changes(beforeCancel, afterCancel, 'rtb_model_requests_total')).toEqual({ 'rtb_model_requests_total{outcome="cancelled"}': 1 })
    expect(sample(afterCancel, 'rtb_deltas_sent_total') - sample(beforeCancel, 'rtb_deltas_sent_total'))
      .toBe(client.frames.slice(from).filter((f) => f.type === 'delta').length)

    // A refused frame: bad JSON gets error bad_request.
    const beforeBad = await scrape()
    const at = client.frames.length
    client.send('{not json')
    await client.waitFor((f) => f.type === 'error' && f.code === 'bad_request', { from: at })
    expect(changes(beforeBad, await scrape(), 'rtb_errors_total')).toEqual({ 'rtb_errors_total{code="bad_request"}': 1 })

    // A resume from memory.
    const lastSeq = client.stored().at(-1)!.seq as number
    const beforeResume = await scrape()
    await client.close()
    const back = await TestClient.connect(server.wsUrl('metrics-1', lastSeq - 2))
    await back.waitFor((f) => f.type === 'connected' && f.seq > lastSeq)
    const afterResume = await scrape()
    expect(changes(beforeResume, afterResume, 'rtb_resumes_total')).toEqual({ 'rtb_resumes_total{source="memory"}': 1 })
    expect(changes(beforeResume, afterResume, 'rtb_ws_closes_total')).toEqual({ 'rtb_ws_closes_total{code="1005"}': 1 })

    // A frame over MAX_MESSAGE_BYTES: close 1009, counted under the code the client was sent.
    const beforeBig = await scrape()
    back.send(JSON.stringify({ type: 'user_message', content: 'x'.repeat(5000) }))
    expect((await back.closed).code).toBe(1009)
    await eventually(async () => sample(await scrape(), 'rtb_ws_closes_total', { code: '1009' }) === sample(beforeBig, 'rtb_ws_closes_total', { code: '1009' }) + 1)
    expect(changes(beforeBig, await scrape(), 'rtb_ws_closes_total')).toEqual({ 'rtb_ws_closes_total{code="1009"}': 1 })
  })

  it('labels a tool the registry does not have as "other"', async () => {
    fake.script(
      sse(toolCallChunks([{ id: 'call_x', name: 'drop_database_now', args: '{}' }])),
      sse(textChunks('No such tool.'))
    )
    const before = await scrape()
    const client = await TestClient.connect(server.wsUrl('metrics-2'))
    client.send({ type: 'user_message', content: 'do it' })
    await client.waitTurnEnd()
    await client.close()
    const after = await scrape()
    expect(changes(before, after, 'rtb_tool_calls_total')).toEqual({ 'rtb_tool_calls_total{outcome="invalid",tool="other"}': 1 })
    expect([...after.keys()].some((k) => k.includes('drop_database_now'))).toBe(false)
  })

  it('answers loopback clients and METRICS_TOKEN holders; others get 401 without a credential and 403 with a wrong one', async () => {
    const remote = { remoteAddress: '203.0.113.9' }
    const none = await server.app.inject({ url: '/metrics', ...remote })
    expect(none.statusCode).toBe(401)
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/)
    expect(none.body).not.toContain('rtb_')
    const wrong = await server.app.inject({ url: '/metrics', headers: { authorization: 'Bearer not-the-token' }, ...remote })
    expect(wrong.statusCode).toBe(403)
    expect(wrong.body).not.toContain('rtb_')
    const right = await server.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${'t'.repeat(32)}` }, ...remote })
    expect(right.statusCode).toBe(200)
    expect(right.body).toContain('# HELP rtb_turns_total Turns closed, by finish reason')
    expect((await server.app.inject({ url: '/metrics' })).statusCode).toBe(200)
  })

  it('METRICS=off: no /metrics and a meter that counts nothing', async () => {
    const app = await buildApp({ config: testConfig({ METRICS: 'off' }) })
    try {
      expect((await app.inject({ url: '/metrics' })).statusCode).toBe(404)
      expect(app.services.meter).toBe(NO_METER)
      expect(app.services.metrics).toBeUndefined()
    } finally {
      await app.close()
    }
  })
})
