/** The tool port: a tool is a name, a description, zod parameters and a handler. */
import type { z } from 'zod'

export interface ToolContext {
  signal: AbortSignal
  sessionId: string
  /** The signed-in principal the turn runs for (DESIGN §10); null when authentication is off. */
  principal?: string | null
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
export type ToolFailure = 'invalid' | 'timeout' | 'cancelled' | 'error'
