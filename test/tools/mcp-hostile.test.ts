/** What a defect hunt did with hostile or broken MCP servers, each kept as a regression test (DESIGN §13). */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_MCP_RESULT_CHARS, MAX_MCP_TOOLS_PER_SERVER } from '../../src/tools/mcp/result.js'
import { eventually, startApp, TestClient, type RunningApp } from '../support/app.js'
import { sse, startFakeOpenAI, textChunks, toolCallChunks, type FakeOpenAI } from '../support/fake-openai.js'

const objectSchema = { type: 'object', properties: {} }
/** 70 good tools, one with a schema the model API refuses, two names that map to one, and two that answer too much. */
const LISTED = [
  ...Array.from({ length: 70 }, (_, i) => ({ name: `t${String(i).padStart(2, '0')}`, inputSchema: objectSchema })),
  { name: 'bad', inputSchema: { type: 'object', properties: {}, additionalProperties: 'yes' } },
  { name: 'del.ete', inputSchema: objectSchema },
  { name: 'del_ete', inputSchema: objectSchema },
  { name: 'big', inputSchema: objectSchema },
  { name: 'blob', inputSchema: objectSchema }
]

/** A raw MCP server over Streamable HTTP: it lists whatever it is told to, with no SDK-side checks. */
async function startHostileMcp (): Promise<{ url: string; close: () => Promise<void> }> {
  const http: HttpServer = createServer((req, res) => {
    const server = new Server({ name: 'hostile', version: '1.0.0' }, { capabilities: { tools: {} } })
    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: LISTED as never }))
    server.setRequestHandler(CallToolRequestSchema, async (request) => {
      if (request.params.name === 'big') return { content: [{ type: 'text', text: 'x'.repeat(8_000_000) }] }
      if (request.params.name === 'blob') return { content: [{ type: 'image', mimeType: 'image/png', data: 'A'.repeat(300_000) }] }
      return { content: [{ type: 'text', text: `ran ${request.params.name}` }] }
    })
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
    res.on('close', () => { void transport.close(); void server.close() })
    server.connect(transport).then(() => transport.handleRequest(req, res)).catch(() => { res.destroy() })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const { port } = http.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/mcp`, close: () => new Promise((resolve) => { http.closeAllConnections(); http.close(() => resolve()) }) }
}

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true } catch { return false }
}

let fake: FakeOpenAI
let hostile: Awaited<ReturnType<typeof startHostileMcp>>
let server: RunningApp
let dir: string

beforeAll(async () => {
  fake = await startFakeOpenAI()
  hostile = await startHostileMcp()
  dir = mkdtempSync(join(tmpdir(), 'mcp-hostile-'))
  // A stdio server that starts, writes its pid, and never answers initialize.
  writeFileSync(join(dir, 'hang.mjs'), `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(join(dir, 'hang.pid'))}, String(process.pid))\nprocess.stdin.resume()\nsetInterval(() => {}, 1000)\n`)
  writeFileSync(join(dir, 'mcp.json'), JSON.stringify({
    mcpServers: {
      hostile: { url: hostile.url, requireApproval: false },
      hangs: { command: process.execPath, args: [join(dir, 'hang.mjs')], requireApproval: false, timeoutMs: 60_000 },
      secret: { url: 'http://svc:sekrit-pass@127.0.0.1:9/mcp', requireApproval: false }
    }
  }))
  server = await startApp({
    env: {
      LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model',
      LLM_MAX_RETRIES: '0', DISCONNECT_GRACE_MS: '600000', MAX_TOOL_STEPS: '2', MCP_CONFIG: join(dir, 'mcp.json'), MCP_RECONNECT_MS: '100'
    }
  })
  await eventually(async () => (await server.app.inject({ url: '/health' })).json().mcp.hostile.state === 'ready', { timeoutMs: 20_000 })
}, 30_000)
afterAll(async () => {
  await server?.close()
  await hostile?.close()
  await fake?.close()
})

describe('a hostile MCP server', () => {
  it(`offers at most ${MAX_MCP_TOOLS_PER_SERVER} tools, none with a schema the model API refuses, one per name`, async () => {
    const offered = server.app.services.tools.names().filter((n) => n.startsWith('hostile__'))
    expect(offered).toHaveLength(MAX_MCP_TOOLS_PER_SERVER)
    expect(offered).not.toContain('hostile__bad')
    expect(new Set(offered).size).toBe(offered.length)
    // Chosen by name order, not list order: big, blob, del.ete (before del_ete), then t00…
    expect(offered.slice(0, 4)).toEqual(['hostile__big', 'hostile__blob', 'hostile__del_ete', 'hostile__t00'])
    expect((await server.app.inject({ url: '/health' })).json().mcp.hostile.tools).toBe(MAX_MCP_TOOLS_PER_SERVER)
  })

  it('an 8 MB text result is cut; 300 KB of non-text content fails that call alone; the turn goes on', async () => {
    fake.script(sse(toolCallChunks([{ id: 'b1', name: 'hostile__big', args: '{}' }, { id: 'b2', name: 'hostile__blob', args: '{}' }])), sse(textChunks('Done.')))
    const client = await TestClient.connect(server.wsUrl(`hostile-${Date.now()}`))
    client.send({ type: 'user_message', content: 'go' })
    const done = await client.waitTurnEnd()
    expect(done).toMatchObject({ finishReason: 'stop', content: 'Done.' })
    const results = new Map(client.ofType('tool_result').map((r) => [r.callId, r]))
    const big = results.get('b1')!
    expect(big.ok).toBe(true)
    expect(big.result.length).toBeLessThan(MAX_MCP_RESULT_CHARS + 100)
    expect(big.result).toMatch(/… \[cut: 8000000 characters, at most 100000\]$/)
    expect(results.get('b2')).toMatchObject({ ok: false, error: expect.stringMatching(/^the result is too large/) })
    expect(client.open).toBe(true)
    await client.close()
  })

  it('/health hides a server\'s error from anonymous callers and a URL password from everyone', async () => {
    await eventually(async () => (await server.app.inject({ url: '/health' })).json().mcp.secret.error !== undefined, { timeoutMs: 10_000 })
    const local = (await server.app.inject({ url: '/health' })).body
    expect(local).not.toContain('sekrit-pass')
    const remote = (await server.app.inject({ url: '/health', remoteAddress: '192.0.2.7' })).json()
    expect(remote.mcp.secret.state).not.toBe('ready')
    expect(remote.mcp.secret.error).toBeUndefined()
  })

  it('a server still starting (it never answers initialize) is closed with the app: no child outlives it', async () => {
    const pidFile = join(dir, 'hang.pid')
    const pid: number = await eventually(() => { try { return Number(readFileSync(pidFile, 'utf8')) || undefined } catch { return undefined } })
    expect(alive(pid)).toBe(true)
    expect((await server.app.inject({ url: '/health' })).json().mcp.hangs.state).toBe('connecting')
    await server.close()
    await eventually(() => !alive(pid), { timeoutMs: 10_000 })
  })
})
