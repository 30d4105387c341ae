/** The tool registry: tool specs for the model, and a `run` that validates, times out and never throws. */
import { z } from 'zod'
import type { Logger } from '../logger.js'
import type { ToolSpec } from '../llm/types.js'
import type { ExternalTool, ToolContext, ToolDefinition, ToolFailure, ToolOutcome, ToolSource } from './types.js'

export interface ToolRegistry {
  /** Tool names offered now: the built-in ones in registration order, then the sources' (MCP) ones. */
  names (): string[]
  /** What the model is told about the tools (OpenAI `tools[]`). */
  specs (): ToolSpec[]
  /** Whether a call of this tool waits for the user's approval first (TOOLS_REQUIRE_APPROVAL, an MCP server's requireApproval). */
  needsApproval (name: string): boolean
  /** Runs one call. Never throws: every failure is `{ ok: false, error }`, worded for the model to read. */
  run (call: { name: string; arguments: string }, ctx: ToolContext): Promise<ToolOutcome>
}

export interface ToolRegistryOptions {
  tools: ToolDefinition[]
  /** Tools that come and go (MCP servers); a name taken by a built-in tool or an earlier source is skipped. */
  sources?: ToolSource[]
  /** Default per-call timeout (TOOL_TIMEOUT_MS); a tool's own `timeoutMs` wins. */
  timeoutMs: number
  /** TOOLS_REQUIRE_APPROVAL: tool names that ask first, or '*' for every tool; external tools may ask on their own. */
  requireApproval?: ReadonlySet<string> | '*'
  logger?: Logger
}

const toSpec = (tool: ToolDefinition): ToolSpec => {
  const { $schema: _ignored, ...parameters } = z.toJSONSchema(tool.parameters, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
  return { type: 'function', function: { name: tool.name, description: tool.description, parameters } }
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err)) || 'unknown error'

/** TOOLS_REQUIRE_APPROVAL as the registry takes it: unset → none, `*` → all, else the comma-separated names. */
export function parseApprovalList (value: string | undefined): ReadonlySet<string> | '*' {
  const names = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  return names.includes('*') ? '*' : new Set(names)
}

// Stryker disable next-line ArrayDeclaration: a string in place of a source has no version to change and no tools
export function createToolRegistry ({ tools, sources = [], timeoutMs, logger, requireApproval = new Set() }: ToolRegistryOptions): ToolRegistry {
  const byName = new Map<string, ToolDefinition>()
  for (const tool of tools) {
    if (byName.has(tool.name)) throw new Error(`Duplicate tool name "${tool.name}"`)
    byName.set(tool.name, tool)
  }
  const builtInSpecs = [...byName.values()].map(toSpec)
  const builtInNames = [...byName.keys()]

  // The sources' tools, rebuilt only when a source's version moved (a server connected or died): a turn pays one
  // version read per source, nothing when there are none.
  // Stryker disable next-line StringLiteral: any start value differs from the first key (a list of numbers)
  let seen = ''
  let current = { specs: builtInSpecs, names: builtInNames, external: new Map<string, ExternalTool>() }
  const view = () => {
    // Stryker disable next-line ConditionalExpression: with no sources the key is '' and the check below returns current too
    if (sources.length === 0) return current
    const key = sources.map((s) => s.version).join(',')
    if (key === seen) return current
    seen = key
    const external = new Map<string, ExternalTool>()
    for (const source of sources) {
      for (const tool of source.tools()) {
        if (byName.has(tool.name) || external.has(tool.name)) {
          logger?.warn({ tool: tool.name }, 'a tool name is taken already: this one is not offered')
          continue
        }
        external.set(tool.name, tool)
      }
    }
    const extSpecs: ToolSpec[] = [...external.values()].map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }))
    current = { specs: [...builtInSpecs, ...extSpecs], names: [...builtInNames, ...external.keys()], external }
    return current
  }

  async function run (call: { name: string; arguments: string }, ctx: ToolContext): Promise<ToolOutcome> {
    const started = performance.now()
    const elapsed = () => Math.round((performance.now() - started) * 100) / 100
    const failed = (error: string, failure: ToolFailure = 'invalid'): ToolOutcome => {
      (ctx.logger ?? logger)?.debug({ sessionId: ctx.sessionId, tool: call.name, ok: false, error }, 'tool call failed')
      return { ok: false, error, durationMs: elapsed(), failure }
    }

    const tool = byName.get(call.name)
    const external = tool ? undefined : view().external.get(call.name)
    if (!tool && !external) return failed(`Unknown tool "${call.name}". Available tools: ${view().names.join(', ') || '(none)'}`)

    let raw: unknown
    try {
      raw = call.arguments.trim() === '' ? {} : JSON.parse(call.arguments)
    } catch (err) {
      return failed(`Invalid JSON arguments: ${messageOf(err)}`)
    }
    let invoke: (signal: AbortSignal) => Promise<unknown>
    if (tool) {
      const parsed = tool.parameters.safeParse(raw)
      if (!parsed.success) return failed(`Invalid arguments for ${tool.name}:\n${z.prettifyError(parsed.error)}`)
      invoke = (signal) => tool.handler(parsed.data, { signal, sessionId: ctx.sessionId, principal: ctx.principal ?? null })
    } else {
      // The server checks its own schema; here only the shape every MCP call needs.
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return failed(`Invalid arguments for ${call.name}: expected a JSON object`)
      invoke = async (signal) => {
        const outcome = await external!.call(raw as Record<string, unknown>, { signal })
        if (!outcome.ok) throw new Error(outcome.error)
        return outcome.result
      }
    }
    if (ctx.signal.aborted) return failed('cancelled before it started', 'cancelled')

    const name = call.name
    // Stryker disable next-line OptionalChaining: an external tool always has its timeoutMs, so tool is only read when it is set
    const limit = external?.timeoutMs ?? tool?.timeoutMs ?? timeoutMs
    const own = new AbortController()
    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    // The handler is raced, not trusted: one that ignores its signal cannot hold the turn.
    const stop = new Promise<ToolOutcome>((resolve) => {
      timer = setTimeout(() => {
        own.abort(new Error(`timed out after ${limit} ms`))
        resolve(failed(`Tool "${name}" timed out after ${limit} ms`, 'timeout'))
      }, limit)
      onAbort = () => {
        own.abort(ctx.signal.reason)
        resolve(failed('cancelled', 'cancelled'))
      }
      // Stryker disable next-line ObjectLiteral,BooleanLiteral: the listener is removed in the finally below either way
      ctx.signal.addEventListener('abort', onAbort, { once: true })
    })
    const log = ctx.logger ?? logger
    log?.debug({ sessionId: ctx.sessionId, tool: name }, 'tool call')
    const work = (async (): Promise<ToolOutcome> => {
      try {
        const result = await invoke(own.signal)
        log?.debug({ sessionId: ctx.sessionId, tool: name, ok: true, durationMs: elapsed() }, 'tool call done')
        return { ok: true, result: asJson(result), durationMs: elapsed() }
      } catch (err) {
        return failed(messageOf(err), 'error')
      }
    })()
    try {
      return await Promise.race([work, stop])
    } finally {
      clearTimeout(timer)
      // Stryker disable next-line ConditionalExpression: the promise executor set onAbort synchronously
      if (onAbort) ctx.signal.removeEventListener('abort', onAbort)
    }
  }

  const needsApproval = (name: string): boolean => {
    const known = byName.has(name) ? true : view().external.get(name)
    if (!known) return false // an unknown tool fails without running: nothing to approve
    if (requireApproval === '*' || requireApproval.has(name)) return true
    return known !== true && known.requireApproval
  }

  return { names: () => [...view().names], specs: () => view().specs, needsApproval, run }
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
