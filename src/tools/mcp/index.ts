/** The MCP servers of MCP_CONFIG as one tool source: each connects, dies and reconnects on its own. */
import type { Logger } from '../../logger.js'
import type { ExternalTool, ToolSource } from '../types.js'
import type { McpConfig } from './config.js'
import { McpServer, type McpServerStatus } from './server.js'

export interface McpTools {
  source: ToolSource
  /** Per server, for /health. */
  status (): Record<string, McpServerStatus & { requireApproval: boolean }>
  /** The servers by name (tests reach a stdio server's pid through it). */
  readonly servers: ReadonlyMap<string, McpServer>
  close (): Promise<void>
}

/** Starts every server in the background (the app does not wait for them). Its tools ask for approval unless its entry says `"requireApproval": false`. */
export function createMcpTools ({ config, logger, reconnectMs }: { config: McpConfig; logger: Logger; reconnectMs: number }): McpTools {
  const servers = new Map<string, McpServer>()
  let version = 0
  let cached: { at: number; tools: ExternalTool[] } | undefined
  for (const [name, entry] of Object.entries(config)) {
    servers.set(name, new McpServer({ name, config: entry, logger, reconnectMs, onChange: () => { version++ } }))
  }
  for (const server of servers.values()) server.start()

  const source: ToolSource = {
    get version () { return version },
    tools () {
      if (cached?.at === version) return cached.tools
      const tools = [...servers.values()].flatMap((s) => s.tools)
      cached = { at: version, tools }
      return tools
    }
  }
  return {
    source,
    servers,
    status: () => Object.fromEntries([...servers].map(([name, s]) => [name, { ...s.status, requireApproval: config[name].requireApproval }])),
    close: async () => { await Promise.all([...servers.values()].map((s) => s.close())) }
  }
}
