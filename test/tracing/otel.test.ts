/** Traces over OTLP/HTTP: an in-test receiver gets the turn's spans with GenAI attributes and parent links; unset, nothing of OpenTelemetry loads. */
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startApp, TestClient } from '../support/app.js'
import { sse, startFakeOpenAI, textChunks, toolCallChunks, usageChunk, type FakeOpenAI } from '../support/fake-openai.js'

interface OtlpValue { stringValue?: string; intValue?: string | number; boolValue?: boolean; arrayValue?: { values: OtlpValue[] } }
interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes: Array<{ key: string; value: OtlpValue }> }

const valueOf = (v: OtlpValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.boolValue ?? v.arrayValue?.values.map(valueOf))
const attrs = (span: OtlpSpan): Record<string, unknown> => Object.fromEntries(span.attributes.map((a) => [a.key, valueOf(a.value)]))

/** A node:http OTLP/HTTP receiver: collects the spans of every JSON POST to /v1/traces. */
async function startReceiver (): Promise<{ url: string; spans: OtlpSpan[]; contentTypes: string[]; server: Server }> {
  const spans: OtlpSpan[] = []
  const contentTypes: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        contentTypes.push(String(req.headers['content-type']))
        const doc = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> }
        for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans)
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, contentTypes, server }
}

let fake: FakeOpenAI
beforeAll(async () => { fake = await startFakeOpenAI() })
afterAll(async () => { await fake.close() })

describe('OpenTelemetry traces', () => {
  it('exports a turn span holding chat {model} and execute_tool {name} spans with the GenAI attributes, and store batch spans', async () => {
    const receiver = await startReceiver()
    const server = await startApp({
      env: {
        LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model', LLM_MAX_RETRIES: '0',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url
      }
    })
    try {
      fake.script(
        sse([...toolCallChunks([{ id: 'call_1', name: 'fetch_user_profile', args: '{"userId":"alice"}' }]), usageChunk({ prompt: 40, completion: 9 })]),
        sse([...textChunks('Alice is on the pro plan.'), usageChunk({ prompt: 60, completion: 7 })])
      )
      const client = await TestClient.connect(server.wsUrl('trace-1'))
      client.send({ type: 'user_message', content: 'Who is alice?' })
      const done = await client.waitTurnEnd()
      expect(done.finishReason).toBe('stop')
      await client.close()
    } finally {
      // Closing the app shuts the tracer down, which exports what is buffered.
      await server.close()
      receiver.server.close()
    }
    expect(receiver.contentTypes.every((t) => t.startsWith('application/json'))).toBe(true)
    const turns = receiver.spans.filter((s) => s.name === 'turn')
    expect(turns).toHaveLength(1)
    const turn = turns[0]
    expect(turn.parentSpanId ?? '').toBe('')
    expect(attrs(turn)).toMatchObject({ 'rtb.session.id': 'trace-1', 'rtb.turn.id': expect.any(String), 'rtb.finish_reason': 'stop' })

    const chats = receiver.spans.filter((s) => s.name === 'chat fake-model')
    expect(chats).toHaveLength(2)
    for (const chat of chats) {
      expect(chat.traceId).toBe(turn.traceId)
      expect(chat.parentSpanId).toBe(turn.spanId)
      expect(chat.kind).toBe(3) // SPAN_KIND_CLIENT
    }
    expect(chats.map(attrs)).toEqual([
      { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'fake-model', 'gen_ai.usage.input_tokens': 40, 'gen_ai.usage.output_tokens': 9, 'gen_ai.response.finish_reasons': ['tool_calls'] },
      { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'fake-model', 'gen_ai.usage.input_tokens': 60, 'gen_ai.usage.output_tokens': 7, 'gen_ai.response.finish_reasons': ['stop'] }
    ])

    const tools = receiver.spans.filter((s) => s.name.startsWith('execute_tool'))
    expect(tools.map((s) => s.name)).toEqual(['execute_tool fetch_user_profile'])
    expect(tools[0].parentSpanId).toBe(turn.spanId)
    expect(tools[0].traceId).toBe(turn.traceId)
    expect(attrs(tools[0])).toEqual({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'fetch_user_profile', 'gen_ai.tool.call.id': 'call_1' })

    const batches = receiver.spans.filter((s) => s.name === 'store append_events')
    expect(batches.length).toBeGreaterThanOrEqual(1)
    // connected, user_message, tool_call, tool_result, assistant_message, disconnected: every event in some batch.
    expect(batches.reduce((n, s) => n + Number(attrs(s)['db.operation.batch.size']), 0)).toBe(6)
  })

  it('loads no OpenTelemetry module when OTEL_EXPORTER_OTLP_ENDPOINT is unset (and does when it is set)', async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url))
    const dir = mkdtempSync(join(tmpdir(), 'otel-load-'))
    const run = async (endpoint: string | undefined) => {
      const log = join(dir, `${endpoint ? 'on' : 'off'}.log`)
      const env: NodeJS.ProcessEnv = { ...process.env, MODULE_LOG: log }
      delete env.OTEL_EXPORTER_OTLP_ENDPOINT
      if (endpoint) env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint
      const { stdout } = await promisify(execFile)(process.execPath, [
        '--import', 'tsx', '--import', './test/tracing/fixtures/watch-register.mjs', 'test/tracing/fixtures/run-turn.ts'
      ], { cwd: root, env })
      const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { finishReason: string; tools: number; cache: string[] }
      return { ...result, resolved: existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [] }
    }
    try {
      const off = await run(undefined)
      expect(off).toEqual({ finishReason: 'stop', tools: 1, cache: [], resolved: [] })
      // The control: the same check sees OpenTelemetry when it is configured.
      const receiver = await startReceiver()
      try {
        const on = await run(receiver.url)
        expect(on.finishReason).toBe('stop')
        expect(on.resolved.some((u) => u.includes('@opentelemetry/sdk-trace-base'))).toBe(true)
        expect(receiver.spans.some((s) => s.name === 'execute_tool get_system_metrics')).toBe(true)
      } finally {
        receiver.server.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
