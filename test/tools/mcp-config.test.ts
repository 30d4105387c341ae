/** MCP_CONFIG read and checked: defaults, every rule of a server entry and its name, the errors that stop the start, tool names. */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isStdio, loadMcpConfig, mcpToolName, McpConfigFile } from '../../src/tools/mcp/config.js'

const dir = mkdtempSync(join(tmpdir(), 'mcp-config-'))
let n = 0
/** Writes `content` (an object as JSON, a string as is) to a fresh file and loads it. */
function load (content: unknown) {
  const path = join(dir, `c${n++}.json`)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return loadMcpConfig(path)
}
const valid = (servers: Record<string, unknown>) => McpConfigFile.safeParse({ mcpServers: servers }).success
const stdio = { command: 'node' }
const http = { url: 'https://mcp.example/mcp' }

describe('loadMcpConfig', () => {
  it('fills the defaults: no args, approval asked, 30 s timeout', () => {
    expect(load({ mcpServers: { local: stdio, remote: http } })).toEqual({
      local: { command: 'node', args: [], requireApproval: true, timeoutMs: 30_000 },
      remote: { url: 'https://mcp.example/mcp', requireApproval: true, timeoutMs: 30_000 }
    })
  })

  it('keeps every setting given', () => {
    const local = { command: 'node', args: ['s.mjs'], env: { A: '1' }, cwd: '/tmp', tools: ['a'], requireApproval: false, timeoutMs: 10 }
    const remote = { url: 'http://127.0.0.1:9/mcp', headers: { authorization: 'Bearer x' }, timeoutMs: 3_600_000 }
    expect(load({ mcpServers: { local, remote } })).toEqual({ local, remote: { ...remote, requireApproval: true } })
  })

  it('a file that cannot be read or is not JSON names MCP_CONFIG and the path', () => {
    const missing = join(dir, 'missing.json')
    expect(() => loadMcpConfig(missing)).toThrow(new RegExp(`^MCP_CONFIG: cannot read ${missing}: ENOENT`))
    expect(() => load('{ not json')).toThrow(/^MCP_CONFIG: cannot read .*c\d+\.json: /)
  })

  it('a file that breaks a rule names MCP_CONFIG, the path and the rule', () => {
    expect(() => load({ servers: {} })).toThrow(/^MCP_CONFIG: .*c\d+\.json is not a valid mcpServers file:\n.*mcpServers/s)
    expect(() => load({ mcpServers: { 'a__b': stdio } })).toThrow('a server name may hold letters, digits, - and single _\n  → at mcpServers.a__b')
    expect(() => load({ mcpServers: { ['s'.repeat(33)]: stdio } })).toThrow('a server name is at most 32 characters (its tools are named <server>__<tool> in 64)')
  })
})

describe('a server entry', () => {
  it('names: letters, digits, - and single _ between them; at most 32 characters', () => {
    for (const name of ['a', 'my-server', 'A1_b2', 'x_y_z', 's'.repeat(32)]) expect(valid({ [name]: stdio })).toBe(true)
    for (const name of ['', '_a', 'a_', 'a__b', 'a.b', 'a b', 'ü', 's'.repeat(33)]) expect(valid({ [name]: stdio })).toBe(false)
  })

  it('stdio: a non-empty command, string args and env; nothing else', () => {
    expect(valid({ s: { command: '' } })).toBe(false)
    expect(valid({ s: { command: 'node', args: [1] } })).toBe(false)
    expect(valid({ s: { command: 'node', env: { A: 1 } } })).toBe(false)
    expect(valid({ s: { command: 'node', cwd: 7 } })).toBe(false)
    expect(valid({ s: { command: 'node', extra: true } })).toBe(false)
  })

  it('http: an http or https URL, string headers; nothing else', () => {
    expect(valid({ s: { url: 'http://h/mcp' } })).toBe(true)
    for (const url of ['ftp://h/mcp', 'ws://h/mcp', 'not a url', 'file:///etc/passwd', 'xhttp://h/mcp', 'httpx://h/mcp']) expect(valid({ s: { url } })).toBe(false)
    expect(valid({ s: { ...http, headers: { a: 1 } } })).toBe(false)
    expect(valid({ s: { ...http, command: 'node' } })).toBe(false)
  })

  it('common settings: non-empty tool names, a boolean approval, a whole timeout from 10 ms to an hour', () => {
    expect(valid({ s: { ...stdio, tools: [''] } })).toBe(false)
    expect(valid({ s: { ...stdio, tools: [] } })).toBe(true)
    expect(valid({ s: { ...stdio, requireApproval: 'no' } })).toBe(false)
    for (const timeoutMs of [9, 3_600_001, 10.5]) expect(valid({ s: { ...stdio, timeoutMs } })).toBe(false)
    for (const timeoutMs of [10, 3_600_000]) expect(valid({ s: { ...stdio, timeoutMs } })).toBe(true)
  })

  it('isStdio tells the two kinds apart', () => {
    const cfg = load({ mcpServers: { a: stdio, b: http } })
    expect([isStdio(cfg.a), isStdio(cfg.b)]).toEqual([true, false])
  })
})

describe('mcpToolName', () => {
  it('is <server>__<tool> in the model API\'s characters, at most 64 of them', () => {
    expect(mcpToolName('srv', 'get-sum_2')).toBe('srv__get-sum_2')
    expect(mcpToolName('srv', 'a.b c/dé')).toBe('srv__a_b_c_d_')
    expect(mcpToolName('srv', 'x'.repeat(100))).toBe(`srv__${'x'.repeat(59)}`)
  })
})
