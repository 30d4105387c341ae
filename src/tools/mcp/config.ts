/** MCP_CONFIG: the common `{"mcpServers": {...}}` file (Claude Desktop, Cursor, VS Code) read and checked with zod. */
import { readFileSync } from 'node:fs'
import { z } from 'zod'

const common = {
  /** Allow-list of the server's own tool names; absent: all of them. */
  tools: z.array(z.string().min(1)).optional(),
  /** Ask the user before each call (DESIGN §13); default true. */
  requireApproval: z.boolean().default(true),
  timeoutMs: z.number().int().min(10).max(3_600_000).default(30_000)
}

const StdioServer = z.strictObject({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().optional(),
  ...common
})
const HttpServer = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  headers: z.record(z.string(), z.string()).optional(),
  ...common
})

/** A server's name becomes the prefix of its tools' names: the model API's character set, no `__` (the separator). */
const ServerName = z.string().max(32, 'a server name is at most 32 characters (its tools are named <server>__<tool> in 64)')
  .regex(/^[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*$/, 'a server name may hold letters, digits, - and single _')

export const McpConfigFile = z.object({
  // Names checked apart: a record's key schema reports only "Invalid key in record", never the rule broken.
  mcpServers: z.record(z.string(), z.union([StdioServer, HttpServer])).superRefine((servers, ctx) => {
    for (const name of Object.keys(servers)) {
      const checked = ServerName.safeParse(name)
      // Stryker disable next-line StringLiteral: zod prints a custom issue's message whatever its code
      if (!checked.success) ctx.addIssue({ code: 'custom', path: [name], message: checked.error.issues[0].message })
    }
  })
})

export type McpServerConfig = z.infer<typeof StdioServer> | z.infer<typeof HttpServer>
export type McpConfig = Record<string, McpServerConfig>

export const isStdio = (c: McpServerConfig): c is z.infer<typeof StdioServer> => 'command' in c

/** Reads and checks the file; throws one error naming MCP_CONFIG and the problem (the server does not start with a bad file). */
export function loadMcpConfig (path: string): McpConfig {
  let raw: unknown
  try {
    // Stryker disable next-line StringLiteral: without an encoding the Buffer JSON.parse gets reads as utf8 too
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new Error(`MCP_CONFIG: cannot read ${path}: ${(err as Error).message}`)
  }
  const parsed = McpConfigFile.safeParse(raw)
  if (!parsed.success) throw new Error(`MCP_CONFIG: ${path} is not a valid mcpServers file:\n${z.prettifyError(parsed.error)}`)
  return parsed.data.mcpServers
}

/** `<server>__<tool>` in the model API's rule `^[a-zA-Z0-9_-]{1,64}$`: other characters become `_`, cut to 64. */
export function mcpToolName (server: string, tool: string): string {
  return `${server}__${tool}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)
}
