/** One MCP server: connects over stdio or Streamable HTTP, lists its tools, calls them, and reconnects with backoff when it dies. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { Logger } from '../../logger.js'
import type { ExternalTool } from '../types.js'
import { isStdio, mcpToolName, type McpServerConfig } from './config.js'

export type McpServerState = 'connecting' | 'ready' | 'down' | 'closed'

/** What /health shows for a server (never its command line, environment or headers: they may hold secrets). */
export interface McpServerStatus {
  state: McpServerState
  transport: 'stdio' | 'http'
  /** Tools offered to the model now. */
  tools: number
  /** Why it is down, when it is. */
  error?: string
  /** Connection attempts since it was last ready. */
  attempts: number
}

/** The longest wait between reconnection attempts. */
const MAX_BACKOFF_MS = 30_000
const CLIENT_INFO = { name: 'realtime-ai-backend', version: '1' }

interface McpContent { type: string; text?: string; [key: string]: unknown }

/** The result the model reads: text-only content as its text, anything else as the content list (plus structured content). */
function resultOf (res: Record<string, unknown>): { ok: true; result: unknown } | { ok: false; error: string } {
  const content = Array.isArray(res.content) ? res.content as McpContent[] : []
  const texts = content.every((c) => c.type === 'text') ? content.map((c) => String(c.text ?? '')) : undefined
  if (res.isError === true) return { ok: false, error: texts ? texts.join('\n') || 'the tool reported an error' : JSON.stringify(content) }
  if (res.structuredContent !== undefined) return { ok: true, result: res.structuredContent }
  return { ok: true, result: texts ? texts.join('\n') : content }
}

export interface McpServerOptions {
  name: string
  config: McpServerConfig
  logger: Logger
  /** The first wait before reconnecting; doubled per failure up to 30 s. */
  reconnectMs: number
  /** Called whenever the server's offered tools change (connected, died). */
  onChange: () => void
}

export class McpServer {
  state: McpServerState = 'connecting'
  private offered: ExternalTool[] = []
  private client: Client | undefined
  private error: string | undefined
  private attempts = 0
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private readonly log: Logger

  constructor (private readonly opts: McpServerOptions) {
    this.log = opts.logger.child({ mcpServer: opts.name })
  }

  get tools (): readonly ExternalTool[] { return this.offered }

  get status (): McpServerStatus {
    return {
      state: this.state,
      transport: isStdio(this.opts.config) ? 'stdio' : 'http',
      tools: this.offered.length,
      attempts: this.attempts,
      ...(this.error && this.state !== 'ready' ? { error: this.error } : {})
    }
  }

  /** Connects in the background; never throws (a failure is a state, retried). */
  start (): void { void this.connect() }

  async close (): Promise<void> {
    this.closed = true
    this.state = 'closed'
    clearTimeout(this.timer)
    this.setTools([])
    const client = this.client
    this.client = undefined
    await client?.close().catch(() => {})
  }

  /** The process id of a stdio server while it runs (tests kill it to show a dead server). */
  get pid (): number | null {
    const transport = this.client?.transport
    return transport instanceof StdioClientTransport ? transport.pid : null
  }

  private transport (): Transport {
    const { config } = this.opts
    if (isStdio(config)) {
      const transport = new StdioClientTransport({
        command: config.command,
        args: config.args,
        ...(config.env ? { env: config.env } : {}),
        ...(config.cwd ? { cwd: config.cwd } : {}),
        stderr: 'pipe'
      })
      // Read, or a chatty server blocks on a full pipe; only at debug (it may echo arguments).
      transport.stderr?.on('data', (chunk: Buffer) => { this.log.debug({ stderr: chunk.toString('utf8').slice(0, 2_000) }, 'mcp server stderr') })
      return transport
    }
    return new StreamableHTTPClientTransport(new URL(config.url), { requestInit: { headers: config.headers ?? {} } })
  }

  private async connect (): Promise<void> {
    if (this.closed) return
    this.state = 'connecting'
    this.attempts++
    const { name, config } = this.opts
    const client = new Client(CLIENT_INFO)
    client.onerror = (err) => { this.log.debug({ err: err.message }, 'mcp transport error') }
    try {
      await client.connect(this.transport(), { timeout: config.timeoutMs })
      const listed: Array<{ name: string; description?: string; inputSchema: Record<string, unknown> }> = []
      let cursor: string | undefined
      do {
        const page = await client.listTools(cursor ? { cursor } : {}, { timeout: config.timeoutMs })
        listed.push(...page.tools)
        cursor = page.nextCursor
      } while (cursor)
      if (this.closed) { await client.close(); return }
      const allowed = config.tools ? new Set(config.tools) : undefined
      const tools = listed.filter((t) => !allowed || allowed.has(t.name)).map((t) => this.external(client, t))
      this.client = client
      // Set after the first list: a close from here on is a death, not a failed start.
      client.onclose = () => { if (this.client === client) this.lost('the connection closed') }
      this.state = 'ready'
      this.error = undefined
      this.attempts = 0
      this.setTools(tools)
      this.log.info({ tools: tools.length, listed: listed.length }, `mcp server ${name} ready`)
    } catch (err) {
      await client.close().catch(() => {})
      if (this.closed) return
      this.error = err instanceof Error ? err.message : String(err)
      this.state = 'down'
      this.log.warn({ err: this.error, attempts: this.attempts }, `mcp server ${name} failed to start`)
      this.retry()
    }
  }

  /** The server died (process exited, connection dropped): its tools leave new turns, and it is reconnected. */
  private lost (why: string): void {
    if (this.closed) return
    this.client = undefined
    this.state = 'down'
    this.error = why
    this.setTools([])
    this.log.warn(`mcp server ${this.opts.name} lost: ${why}; reconnecting`)
    this.retry()
  }

  private retry (): void {
    clearTimeout(this.timer)
    const wait = Math.min(MAX_BACKOFF_MS, this.opts.reconnectMs * 2 ** Math.max(0, this.attempts - 1))
    this.timer = setTimeout(() => { void this.connect() }, wait)
    this.timer.unref()
  }

  private setTools (tools: ExternalTool[]): void {
    if (tools.length === 0 && this.offered.length === 0) return
    this.offered = tools
    this.opts.onChange()
  }

  private external (client: Client, tool: { name: string; description?: string; inputSchema: Record<string, unknown> }): ExternalTool {
    const { name: server, config } = this.opts
    return {
      name: mcpToolName(server, tool.name),
      description: `${tool.description ?? tool.name} (MCP server ${server})`.slice(0, 1_024),
      parameters: { type: 'object', ...tool.inputSchema },
      timeoutMs: config.timeoutMs,
      requireApproval: config.requireApproval,
      call: async (args, { signal }) => {
        // A call on a client that has since died fails here, not on another server.
        if (this.client !== client) return { ok: false, error: `MCP server "${server}" is not connected` }
        try {
          const res = await client.callTool({ name: tool.name, arguments: args }, undefined, { signal, timeout: config.timeoutMs })
          return resultOf(res as Record<string, unknown>)
        } catch (err) {
          return { ok: false, error: `MCP server "${server}": ${err instanceof Error ? err.message : String(err)}` }
        }
      }
    }
  }
}
