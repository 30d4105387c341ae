/** The tool registry: tool specs for the model, and a `run` that validates, times out and never throws. */
import { z } from 'zod'
import type { Logger } from '../logger.js'
import type { ToolSpec } from '../llm/types.js'
import type { ToolContext, ToolDefinition, ToolFailure, ToolOutcome } from './types.js'

export interface ToolRegistry {
  /** Registered tool names, in registration order. */
  names (): string[]
  /** What the model is told about the tools (OpenAI `tools[]`). */
  specs (): ToolSpec[]
  /** Runs one call. Never throws: every failure is `{ ok: false, error }`, worded for the model to read. */
  run (call: { name: string; arguments: string }, ctx: ToolContext): Promise<ToolOutcome>
}

export interface ToolRegistryOptions {
  tools: ToolDefinition[]
  /** Default per-call timeout (TOOL_TIMEOUT_MS); a tool's own `timeoutMs` wins. */
  timeoutMs: number
  logger?: Logger
}

const toSpec = (tool: ToolDefinition): ToolSpec => {
  const { $schema: _ignored, ...parameters } = z.toJSONSchema(tool.parameters, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
  return { type: 'function', function: { name: tool.name, description: tool.description, parameters } }
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err)) || 'unknown error'

export function createToolRegistry ({ tools, timeoutMs, logger }: ToolRegistryOptions): ToolRegistry {
  const byName = new Map<string, ToolDefinition>()
  for (const tool of tools) {
    if (byName.has(tool.name)) throw new Error(`Duplicate tool name "${tool.name}"`)
    byName.set(tool.name, tool)
  }
  const specs = [...byName.values()].map(toSpec)

  async function run (call: { name: string; arguments: string }, ctx: ToolContext): Promise<ToolOutcome> {
    const started = performance.now()
    const elapsed = () => Math.round((performance.now() - started) * 100) / 100
    const failed = (error: string, failure: ToolFailure = 'invalid'): ToolOutcome => {
      logger?.debug({ sessionId: ctx.sessionId, tool: call.name, ok: false, error }, 'tool call failed')
      return { ok: false, error, durationMs: elapsed(), failure }
    }

    const tool = byName.get(call.name)
    if (!tool) return failed(`Unknown tool "${call.name}". Available tools: ${[...byName.keys()].join(', ') || '(none)'}`)

    let raw: unknown
    try {
      raw = call.arguments.trim() === '' ? {} : JSON.parse(call.arguments)
    } catch (err) {
      return failed(`Invalid JSON arguments: ${messageOf(err)}`)
    }
    const parsed = tool.parameters.safeParse(raw)
    if (!parsed.success) return failed(`Invalid arguments for ${tool.name}:\n${z.prettifyError(parsed.error)}`)
    if (ctx.signal.aborted) return failed('cancelled before it started', 'cancelled')

    const limit = tool.timeoutMs ?? timeoutMs
    const own = new AbortController()
    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    // The handler is raced, not trusted: one that ignores its signal cannot hold the turn.
    const stop = new Promise<ToolOutcome>((resolve) => {
      timer = setTimeout(() => {
        own.abort(new Error(`timed out after ${limit} ms`))
        resolve(failed(`Tool "${tool.name}" timed out after ${limit} ms`, 'timeout'))
      }, limit)
      onAbort = () => {
        own.abort(ctx.signal.reason)
        resolve(failed('cancelled', 'cancelled'))
      }
      ctx.signal.addEventListener('abort', onAbort, { once: true })
    })
    logger?.debug({ sessionId: ctx.sessionId, tool: tool.name }, 'tool call')
    const work = (async (): Promise<ToolOutcome> => {
      try {
        const result = await tool.handler(parsed.data, { signal: own.signal, sessionId: ctx.sessionId, principal: ctx.principal ?? null })
        logger?.debug({ sessionId: ctx.sessionId, tool: tool.name, ok: true, durationMs: elapsed() }, 'tool call done')
        return { ok: true, result: asJson(result), durationMs: elapsed() }
      } catch (err) {
        return failed(messageOf(err), 'error')
      }
    })()
    try {
      return await Promise.race([work, stop])
    } finally {
      clearTimeout(timer)
      if (onAbort) ctx.signal.removeEventListener('abort', onAbort)
    }
  }

  return { names: () => [...byName.keys()], specs: () => specs, run }
}

/**
 * The result as JSON will carry it (it is stored, sent and fed back to the model): Dates become
 * strings, undefined null. A value JSON cannot carry (a BigInt, a cycle) throws, so the call fails.
 */
function asJson (value: unknown): unknown {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (err) {
    throw new Error(`result is not JSON-serialisable: ${(err as Error).message}`)
  }
  return text === undefined ? null : JSON.parse(text)
}

/** Keeps a tool's handler typed by its own schema while it joins a list of plain ToolDefinitions. */
export function defineTool<S extends z.ZodType> (def: ToolDefinition<S>): ToolDefinition {
  return def as unknown as ToolDefinition
}
