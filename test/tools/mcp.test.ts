/** MCP servers as tool sources (DESIGN §13): the official server-everything over stdio, and an SDK-built Streamable HTTP server. */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { McpServer as SdkServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { z } from 'zod'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mcpToolName } from '../../src/tools/mcp/config.js'
import { eventually, startApp, TestClient, type RunningApp } from '../support/app.js'
import { sse, startFakeOpenAI, textChunks, toolCallChunks, type FakeOpenAI } from '../support/fake-openai.js'

const everything = join(createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/package.json'), '..', 'dist', 'index.js')
const TOKEN = 'Bearer mcp-test-token'

/** A Streamable HTTP MCP server (stateless) that refuses requests without the header. */
async function startHttpMcp (): Promise<{ url: string; refused: () => number; close: () => Promise<void> }> {
  let refused = 0
  const http: Server = createServer((req, res) => {
    if (req.headers.authorization !== TOKEN) {
      refused++
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}')
      return
    }
    const server = new SdkServer({ name: 'shouter', version: '1.0.0' })
    server.registerTool('shout', { description: 'Upper-cases a text', inputSchema: { text: z.string() } }, async ({ text }) => ({
      content: [{ type: 'text', text: text.toUpperCase() }]
    }))
    server.registerTool('fail', { description: 'Always reports an error', inputSchema: {} }, async () => ({
      content: [{ type: 'text', text: 'it went wrong on purpose' }], isError: true
    }))
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
    res.on('close', () => { void transport.close(); void server.close() })
    server.connect(transport).then(() => transport.handleRequest(req, res)).catch(() => { res.destroy() })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const { port } = http.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    refused: () => refused,
    close: () => new Promise((resolve) => { http.closeAllConnections(); http.close(() => resolve()) })
  }
}

let fake: FakeOpenAI
let server: RunningApp
let httpMcp: Awaited<ReturnType<typeof startHttpMcp>>
let n = 0
const newId = () => `mcp-${Date.now().toString(36)}-${n++}`
const toolNames = (req: { body: { tools?: Array<{ function: { name: string } }> } }) => (req.body.tools ?? []).map((t) => t.function.name)

beforeAll(async () => {
  fake = await startFakeOpenAI()
  httpMcp = await startHttpMcp()
  const dir = mkdtempSync(join(tmpdir(), 'mcp-config-'))
  const file = join(dir, 'mcp.json')
  writeFileSync(file, JSON.stringify({
    mcpServers: {
      everything: { command: process.execPath, args: [everything, 'stdio'], requireApproval: false, timeoutMs: 20_000 },
      limited: { command: process.execPath, args: [everything, 'stdio'], tools: ['echo'], requireApproval: false },
      asks: { command: process.execPath, args: [everything, 'stdio'], tools: ['get-sum'] },
      http: { url: httpMcp.url, headers: { Authorization: TOKEN }, requireApproval: false },
      nobody: { url: httpMcp.url, requireApproval: false },
      missing: { command: join(dir, 'no-such-binary'), requireApproval: false }
    }
  }))
  server = await startApp({
    env: {
      LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model',
      LLM_MAX_RETRIES: '0', LLM_TIMEOUT_MS: '5000', DISCONNECT_GRACE_MS: '600000', MAX_TOOL_STEPS: '3',
      MCP_CONFIG: file, MCP_RECONNECT_MS: '100'
    }
  })
  // The servers start in the background: wait until the good ones are ready.
  await eventually(async () => {
    const mcp = (await server.app.inject({ url: '/health' })).json().mcp
    return ['everything', 'limited', 'asks', 'http'].every((name) => mcp[name].state === 'ready') && mcp
  }, { timeoutMs: 20_000 })
}, 30_000)
afterAll(async () => {
  await server?.close()
  await httpMcp?.close()
  await fake?.close()
})
afterEach(() => { expect(fake.pending()).toBe(0) })

async function health () {
  return (await server.app.inject({ url: '/health' })).json()
}

describe('MCP tools', () => {
  it('names follow <server>__<tool> in the model API rule, cut to 64 characters', () => {
    expect(mcpToolName('everything', 'get-sum')).toBe('everything__get-sum')
    expect(mcpToolName('srv', 'a.b c/d')).toBe('srv__a_b_c_d')
    const long = mcpToolName('server', 'x'.repeat(100))
    expect(long).toHaveLength(64)
    expect(long).toMatch(/^[a-zA-Z0-9_-]{1,64}$/)
  })

  it('a bad MCP_CONFIG stops the start with a message naming it', async () => {
    await expect(startApp({ env: { MCP_CONFIG: join(tmpdir(), 'no-such-mcp-config.json') } })).rejects.toThrow(/^MCP_CONFIG: cannot read/)
    const dir = mkdtempSync(join(tmpdir(), 'mcp-bad-'))
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ mcpServers: { 'has__double': { command: 'x' }, other: { url: 'ftp://x' } } }))
    await expect(startApp({ env: { MCP_CONFIG: join(dir, 'bad.json') } })).rejects.toThrow(/MCP_CONFIG: .* is not a valid mcpServers file/)
  })

  it('/health shows each server; one that cannot start or is refused is down and harms no other', async () => {
    const { mcp, status } = await health()
    expect(status).toBe('ok')
    expect(mcp.everything).toMatchObject({ state: 'ready', transport: 'stdio', requireApproval: false })
    expect(mcp.everything.tools).toBeGreaterThan(5)
    expect(mcp.limited).toMatchObject({ state: 'ready', tools: 1, requireApproval: false })
    expect(mcp.http).toMatchObject({ state: 'ready', transport: 'http', tools: 2 })
    // Without the header the HTTP server refuses: down, retried.
    expect(mcp.nobody.state).not.toBe('ready')
    expect(httpMcp.refused()).toBeGreaterThan(0)
    expect(mcp.missing.state).not.toBe('ready')
    expect(mcp.missing.error).toMatch(/ENOENT|spawn|closed/i)
    // MCP tools ask by default.
    expect(mcp.asks).toMatchObject({ state: 'ready', tools: 1, requireApproval: true })
  })

  it('offers the prefixed tools with their schemas; the model calls echo and get-sum and gets the real results', async () => {
    const before = fake.requests.length
    fake.script(
      sse(toolCallChunks([
        { id: 'c1', name: 'everything__echo', args: '{"message":"hello mcp"}' },
        { id: 'c2', name: 'everything__get-sum', args: '{"a":2,"b":40}' },
        { id: 'c3', name: 'http__shout', args: '{"text":"quiet"}' },
        { id: 'c4', name: 'http__fail', args: '{}' }
      ])),
      sse(textChunks('Done.'))
    )
    const client = await TestClient.connect(server.wsUrl(newId()))
    const session = await client.waitFor((f) => f.type === 'session')
    client.send({ type: 'user_message', content: 'use the tools' })
    const done = await client.waitTurnEnd()
    expect(done).toMatchObject({ finishReason: 'stop', content: 'Done.' })

    const offered = toolNames(fake.requests[before])
    expect(offered.slice(0, 2)).toEqual(['get_system_metrics', 'fetch_user_profile'])
    expect(offered).toEqual(expect.arrayContaining(['everything__echo', 'everything__get-sum', 'everything__trigger-long-running-operation', 'limited__echo', 'http__shout', 'http__fail']))
    // The allow-lists hide the rest of `limited` and `asks`; the down servers offer nothing.
    expect(offered.filter((t) => t.startsWith('limited__'))).toEqual(['limited__echo'])
    expect(offered.filter((t) => t.startsWith('asks__'))).toEqual(['asks__get-sum'])
    expect(offered.filter((t) => /^(nobody|missing)__/.test(t))).toEqual([])
    for (const name of offered) expect(name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/)
    expect(session.tools).toEqual(offered)
    const sum = fake.requests[before].body.tools.find((t: { function: { name: string } }) => t.function.name === 'everything__get-sum').function
    expect(sum.parameters).toMatchObject({ type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } } })
    expect(sum.description).toContain('MCP server everything')

    const results = new Map(client.ofType('tool_result').map((r) => [r.callId, r]))
    expect(results.get('c1')).toMatchObject({ name: 'everything__echo', ok: true, result: 'Echo: hello mcp' })
    expect(results.get('c2')).toMatchObject({ ok: true, result: 'The sum of 2 and 40 is 42.' })
    expect(results.get('c3')).toMatchObject({ ok: true, result: 'QUIET' })
    expect(results.get('c4')).toMatchObject({ ok: false, error: 'it went wrong on purpose' })
    // The model read the real results.
    const toolMessages = fake.requests[before + 1].body.messages.filter((m: { role: string }) => m.role === 'tool')
    expect(toolMessages.map((m: { content: string }) => m.content)).toEqual(['"Echo: hello mcp"', '"The sum of 2 and 40 is 42."', '"QUIET"', 'Error: it went wrong on purpose'])
    await client.close()
  })

  it('an MCP tool asks for approval by default: the call waits, is approved, and runs', async () => {
    fake.script(sse(toolCallChunks([{ id: 'a1', name: 'asks__get-sum', args: '{"a":1,"b":2}' }])), sse(textChunks('Three.')))
    const client = await TestClient.connect(server.wsUrl(newId()))
    client.send({ type: 'user_message', content: 'add' })
    const request = await client.waitFor((f) => f.type === 'approval_request')
    expect(request).toMatchObject({ callId: 'a1', name: 'asks__get-sum', arguments: { a: 1, b: 2 } })
    expect(client.ofType('tool_result')).toEqual([])
    client.send({ type: 'tool_approval', callId: 'a1', approved: true })
    await client.waitTurnEnd()
    expect(client.ofType('tool_result')[0]).toMatchObject({ callId: 'a1', ok: true, result: 'The sum of 1 and 2 is 3.' })
    await client.close()
  })

  it('a server killed mid-call: that call fails, the turn and other tools go on, its tools vanish, then come back', async () => {
    const before = fake.requests.length
    fake.script(
      sse(toolCallChunks([
        { id: 'k1', name: 'everything__trigger-long-running-operation', args: '{"duration":30,"steps":3}' },
        { id: 'k2', name: 'limited__echo', args: '{"message":"still here"}' }
      ])),
      sse(textChunks('One of them died.'))
    )
    const client = await TestClient.connect(server.wsUrl(newId()))
    client.send({ type: 'user_message', content: 'run long' })
    // The echo answers at once; the long call is in flight when its server is killed.
    await client.waitFor((f) => f.type === 'tool_result' && f.callId === 'k2')
    const pid = server.app.services.mcp!.servers.get('everything')!.pid
    expect(pid).toBeGreaterThan(0)
    process.kill(pid!, 'SIGKILL')
    const done = await client.waitTurnEnd()
    expect(done).toMatchObject({ finishReason: 'stop', content: 'One of them died.' })
    const results = new Map(client.ofType('tool_result').map((r) => [r.callId, r]))
    expect(results.get('k1')).toMatchObject({ ok: false, error: expect.stringMatching(/MCP server "everything"/) })
    expect(results.get('k2')).toMatchObject({ ok: true, result: 'Echo: still here' })

    // Its tools leave the registry new turns read (the reconnection waits 100 ms, then the process starts: a window).
    const registry = server.app.services.tools
    const namesWhileDown = await eventually(() => {
      const names = registry.names()
      return names.some((t) => t.startsWith('everything__')) ? null : names
    })
    expect(namesWhileDown).toEqual(expect.arrayContaining(['get_system_metrics', 'limited__echo', 'http__shout', 'http__fail']))
    expect(namesWhileDown.filter((t) => t.startsWith('everything__'))).toEqual([])
    expect((await health()).status).toBe('ok')
    // And the process, the session and the other tools live on: a new turn uses them.
    fake.script(sse(toolCallChunks([{ id: 'k4', name: 'limited__echo', args: '{"message":"alive"}' }])), sse(textChunks('ok')))
    client.send({ type: 'user_message', content: 'again' })
    await client.waitFor((f) => f.type === 'assistant_message' && f.turnId !== done.turnId)
    expect(client.ofType('tool_result').find((r) => r.callId === 'k4')).toMatchObject({ ok: true, result: 'Echo: alive' })
    expect(toolNames(fake.requests[before + 2])).toEqual(expect.arrayContaining(['limited__echo', 'http__shout', 'get_system_metrics']))

    // Reconnected with backoff: its tools are offered again, to a new process.
    await eventually(async () => (await health()).mcp.everything.state === 'ready', { timeoutMs: 15_000 })
    expect(server.app.services.mcp!.servers.get('everything')!.pid).not.toBe(pid)
    fake.script(sse(toolCallChunks([{ id: 'k3', name: 'everything__echo', args: '{"message":"back"}' }])), sse(textChunks('Back.')))
    const third = fake.requests.length
    client.send({ type: 'user_message', content: 'and now?' })
    await client.waitFor((f) => f.type === 'tool_result' && f.callId === 'k3')
    expect(client.ofType('tool_result').find((r) => r.callId === 'k3')).toMatchObject({ ok: true, result: 'Echo: back' })
    expect(toolNames(fake.requests[third])).toContain('everything__echo')
    await client.waitFor((f) => f.type === 'assistant_message' && f.content === 'Back.')
    await client.close()
  })
})
