/** The MCP servers of MCP_CONFIG as one tool source: each connects, dies and reconnects on its own. */
import type { Logger } from '../../logger.js'
import type { ExternalTool, ToolSource } from '../types.js'
import type { McpConfig } from './config.js'
import { McpServer, type McpServerStatus } from './server.js'

export interface McpTools {
  source: ToolSource
  /** Per server, for /health. */
  status (): Record<string, McpServerStatus & { offered: boolean }>
  /** The servers by name (tests reach a stdio server's pid through it). */
  readonly servers: ReadonlyMap<string, McpServer>
  close (): Promise<void>
}

/**
 * Starts every server in the background (the app does not wait for them). Until tool approval exists (issue 16),
 * a server's tools are offered to the model only when its entry says `"requireApproval": false`: tools that
 * should ask first are never run unasked.
 */
export function createMcpTools ({ config, logger, reconnectMs }: { config: McpConfig; logger: Logger; reconnectMs: number }): McpTools {
  const servers = new Map<string, McpServer>()
  let version = 0
  let cached: { at: number; tools: ExternalTool[] } | undefined
  const offered = (name: string) => config[name].requireApproval === false
  for (const [name, entry] of Object.entries(config)) {
    if (entry.requireApproval !== false) {
      logger.warn({ mcpServer: name }, `mcp server ${name}: its tools need approval, which this build does not have yet (issue 16); they are not offered. Set "requireApproval": false to offer them`)
    }
    servers.set(name, new McpServer({ name, config: entry, logger, reconnectMs, onChange: () => { version++ } }))
  }
  for (const server of servers.values()) server.start()

  const source: ToolSource = {
    get version () { return version },
    tools () {
      if (cached?.at === version) return cached.tools
      const tools = [...servers].filter(([name]) => offered(name)).flatMap(([, s]) => s.tools)
      cached = { at: version, tools }
      return tools
    }
  }
  return {
    source,
    servers,
    status: () => Object.fromEntries([...servers].map(([name, s]) => [name, { ...s.status, offered: offered(name) }])),
    close: async () => { await Promise.all([...servers.values()].map((s) => s.close())) }
  }
}
