/** One MCP server: connects over stdio or Streamable HTTP, lists its tools, calls them, and reconnects with backoff when it dies. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { Logger } from '../../logger.js'
import type { ExternalTool } from '../types.js'
import { isStdio, mcpToolName, type McpServerConfig } from './config.js'
import { chooseTools, MAX_MCP_TOOLS_PER_SERVER, resultOf, safeError } from './result.js'

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
  /** A client still connecting (its process started): closed too on shutdown, or the child outlives the server. */
  private connecting: Client | undefined
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
    const clients = [this.client, this.connecting]
    this.client = undefined
    this.connecting = undefined
    await Promise.all(clients.map(async (c) => { await c?.close().catch(() => {}) }))
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
    client.onerror = (err) => { this.log.debug({ err: safeError(err) }, 'mcp transport error') }
    this.connecting = client
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
      this.connecting = undefined
      const tools = this.offer(client, listed)
      this.client = client
      // Set after the first list: a close from here on is a death, not a failed start.
      client.onclose = () => { if (this.client === client) this.lost('the connection closed') }
      this.state = 'ready'
      this.error = undefined
      this.attempts = 0
      this.setTools(tools)
      this.log.info({ tools: tools.length, listed: listed.length }, `mcp server ${name} ready`)
    } catch (err) {
      if (this.connecting === client) this.connecting = undefined
      await client.close().catch(() => {})
      if (this.closed) return
      this.error = safeError(err)
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

  /** The tools this server offers (see chooseTools); what is left out is logged. */
  private offer (client: Client, listed: Array<{ name: string; description?: string; inputSchema: Record<string, unknown> }>): ExternalTool[] {
    const { name: server, config } = this.opts
    const { chosen, skipped } = chooseTools(listed, { allowed: config.tools, nameOf: (tool) => mcpToolName(server, tool) })
    if (skipped.length > 0) {
      this.log.warn({ skipped: skipped.length, examples: skipped.slice(0, 5) }, `mcp server ${this.opts.name}: tools left out (invalid input schema, a name taken by another tool, or over ${MAX_MCP_TOOLS_PER_SERVER})`)
    }
    return chosen.map((tool) => this.external(client, tool))
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
          return { ok: false, error: `MCP server "${server}": ${safeError(err)}` }
        }
      }
    }
  }
}
