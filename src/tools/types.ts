/** The tool port: a tool is a name, a description, zod parameters and a handler. */
import type { z } from 'zod'
import type { Logger } from '../logger.js'

export interface ToolContext {
  signal: AbortSignal
  sessionId: string
  /** The signed-in principal the turn runs for (DESIGN §10); null when authentication is off. */
  principal?: string | null
  /** The turn's logger (its lines carry session, connection, turn, principal, client); else the registry's. */
  logger?: Logger
}

export interface ToolDefinition<S extends z.ZodType = z.ZodType> {
  name: string
  description: string
  parameters: S
  /** Per-tool override of TOOL_TIMEOUT_MS. */
  timeoutMs?: number
  handler: (args: z.infer<S>, ctx: ToolContext) => Promise<unknown>
}

/** Outcome of one tool call; never an exception. */
export type ToolOutcome =
  | { ok: true; result: unknown; durationMs: number }
  | { ok: false; error: string; durationMs: number; failure?: ToolFailure }

/** Why a call failed, for metrics and traces: refused before it ran (`invalid`), `timeout`, `cancelled`, or the tool threw (`error`). */
export type ToolFailure = 'invalid' | 'timeout' | 'cancelled' | 'error' | 'declined'

/**
 * A tool known only at run time (an MCP server's): described by JSON Schema, run by its source. The registry
 * still times it, races it against its timeout and the turn's signal, and turns a throw into `ok: false`.
 */
export interface ExternalTool {
  name: string
  description: string
  /** JSON Schema of the arguments (an object schema), as the model is given it. */
  parameters: Record<string, unknown>
  timeoutMs: number
  /** Ask the user before each call (an MCP server's `requireApproval`, default true). */
  requireApproval: boolean
  /** `error` is what the model reads when the tool reports a failure (MCP `isError`). */
  call (args: Record<string, unknown>, ctx: { signal: AbortSignal }): Promise<{ ok: true; result: unknown } | { ok: false; error: string }>
}

/** A changing set of tools (the MCP servers): the registry reads it when its `version` moved, never per token. */
export interface ToolSource {
  /** Changes whenever `tools()` would answer differently. */
  readonly version: number
  tools (): readonly ExternalTool[]
}
