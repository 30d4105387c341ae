/** One turn of conversation: stream the model, run a step's tool calls in parallel, feed the results back, repeat. */
import type { Logger } from '../logger.js'
import { clip } from '../text.js'
import type { ToolRegistry } from '../tools/registry.js'
import type { ToolOutcome } from '../tools/types.js'
import type { Usage } from '../protocol.js'
import type { ChatMessage, ChatModel, ToolCall } from './types.js'

export interface TurnCallbacks {
  /** Before each model request (step). */
  onStep? (): void
  /** Every text delta in order, across all steps. */
  onText (text: string): void
  /** Every reasoning delta in order, across all steps (absent: reasoning is still summed in the result). */
  onReasoning? (text: string): void
  /** Before the call runs; args = parsed JSON, or the raw string when it is not valid JSON. */
  onToolCall (call: ToolCall, args: unknown): void
  onToolResult (call: ToolCall, outcome: ToolOutcome): void
  /** A model request (step) starts; returns what to call when it ends (metrics and traces; absent: nothing measured). */
  onModelCall? (step: number): (end: ModelCallEnd) => void
}

/** How one model request ended: `unavailable` failed before any output, `error` broke after. */
export interface ModelCallEnd {
  outcome: 'ok' | 'error' | 'unavailable' | 'cancelled'
  finishReason?: 'stop' | 'length' | 'tool_calls'
  usage?: Usage
}

export interface TurnResult {
  /** All text given to onText in this turn, concatenated. */
  content: string
  /** All reasoning text of the turn, concatenated; absent when the model sent none. */
  reasoning?: string
  finishReason: 'stop' | 'length' | 'tool_limit' | 'cancelled' | 'error'
  /** Summed over steps. */
  usage?: Usage
  error?: { code: 'llm_unavailable' | 'llm_error'; message: string; retryable: boolean }
  /** Model requests made. */
  steps: number
}

export interface ToolLoopOptions {
  model: ChatModel
  tools: ToolRegistry
  /** Context for the first step; not modified (the loop works on a copy). */
  messages: ChatMessage[]
  signal: AbortSignal
  /** MAX_TOOL_STEPS: model requests per turn. */
  maxSteps: number
  sessionId: string
  /** The session's owner (DESIGN §10): tools answer for this principal only; null with auth off. */
  principal?: string | null
  /** The turn's logger, handed to the tools' lines. */
  logger?: Logger
  callbacks: TurnCallbacks
  /**
   * Asks the user about a call of a tool that needs approval (the registry says which); absent: such calls run
   * unasked. Resolves once decided: declined (denied, timed out, the turn stopped) carries what the model reads.
   */
  approve?: (call: ToolCall, args: unknown) => Promise<{ approved: true } | { approved: false; error: string }>
}

/** Longest tool result the model reads, in its own turn and in later ones; the rest is cut with a marker (the stored result stays whole). */
export const MAX_TOOL_CONTENT = 8_000

/** The tool message content the model reads: the result as JSON, or `Error: <reason>`, cut at MAX_TOOL_CONTENT. */
export function toolMessageContent (outcome: Pick<ToolOutcome, 'ok'> & { result?: unknown, error?: string }): string {
  let text: string
  if (!outcome.ok) {
    text = `Error: ${outcome.error ?? 'failed'}`
  } else {
    try {
      text = JSON.stringify(outcome.result ?? null) ?? 'null'
    } catch (err) {
      text = `Error: result is not serialisable (${err instanceof Error ? err.message : String(err)})`
    }
  }
  return clip(text, MAX_TOOL_CONTENT, '… [truncated]')
}

/** Arguments nested deeper than this are recorded as the raw string: JSON.parse takes any depth, but
 * JSON.stringify (recording the event, sending it) recurses and overflows the stack on a few thousand levels. */
const MAX_ARGS_DEPTH = 64

function deeperThan (value: unknown, levels: number): boolean {
  if (value === null || typeof value !== 'object') return false
  if (levels === 0) return true
  for (const v of Object.values(value)) if (deeperThan(v, levels - 1)) return true
  return false
}

const parseArgs = (raw: string): unknown => {
  if (raw.trim() === '') return {}
  let parsed: unknown
  try { parsed = JSON.parse(raw) } catch { return raw }
  return deeperThan(parsed, MAX_ARGS_DEPTH) ? raw : parsed
}

const addUsage = (a: Usage | undefined, b: Usage | undefined): Usage | undefined =>
  !b ? a : !a ? { ...b } : {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    totalTokens: a.totalTokens + b.totalTokens
  }

/**
 * Runs one turn. At most `maxSteps` model requests: when the last allowed step still asks for
 * tools, those run (every call gets its result) and the turn ends with `tool_limit` without asking
 * the model again. Never throws: a model failure, a thrown callback or a model bug is `finishReason: 'error'`.
 */
export async function runToolLoop (opts: ToolLoopOptions): Promise<TurnResult> {
  const { model, tools, signal, maxSteps, sessionId, principal = null, callbacks, approve } = opts
  const messages = [...opts.messages]
  const specs = tools.specs()
  let content = ''
  let reasoning = ''
  let usage: Usage | undefined
  let steps = 0
  const onReasoning = (text: string) => {
    reasoning += text
    callbacks.onReasoning?.(text)
  }
  const done = (finishReason: TurnResult['finishReason'], error?: TurnResult['error']): TurnResult =>
    ({ content, ...(reasoning ? { reasoning } : {}), finishReason, ...(usage ? { usage } : {}), ...(error ? { error } : {}), steps })

  try {
    while (true) {
      // May stop the turn (a spent token budget) before the request is made.
      callbacks.onStep?.()
      if (signal.aborted) return done('cancelled')
      steps++
      let stepText = ''
      const calls: ToolCall[] = []
      let reason: 'stop' | 'length' | 'tool_calls' | undefined
      const onText = (text: string) => {
        stepText += text
        content += text
        callbacks.onText(text)
      }
      const ended = callbacks.onModelCall?.(steps)
      let stepUsage: Usage | undefined
      try {
        // Text arrives through onText (synchronously, the hot path) or as events, depending on the model.
        for await (const event of model.stream({ messages, tools: specs, signal, onText, onReasoning })) {
          if (signal.aborted) break
          if (event.type === 'text') {
            onText(event.text)
          } else if (event.type === 'reasoning') {
            onReasoning(event.text)
          } else if (event.type === 'tool_call') {
            calls.push(event.call)
          } else if (event.type === 'finish') {
            reason = event.reason
            stepUsage = event.usage
            usage = addUsage(usage, event.usage)
          } else {
            ended?.({ outcome: event.code === 'llm_unavailable' ? 'unavailable' : 'error' })
            return done('error', { code: event.code, message: event.message, retryable: event.retryable })
          }
        }
      } catch (err) {
        ended?.({ outcome: signal.aborted ? 'cancelled' : 'error' })
        throw err
      }
      ended?.(signal.aborted
        ? { outcome: 'cancelled', ...(stepUsage ? { usage: stepUsage } : {}) }
        : { outcome: reason === undefined ? 'error' : 'ok', ...(reason ? { finishReason: reason } : {}), ...(stepUsage ? { usage: stepUsage } : {}) })
      if (signal.aborted) return done('cancelled')
      if (calls.length === 0) {
        if (reason === undefined) return done('error', { code: 'llm_error', message: 'model stream ended without a finish event', retryable: true })
        return done(reason === 'length' ? 'length' : 'stop')
      }

      messages.push({
        role: 'assistant',
        content: stepText || null,
        tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }))
      })
      const args = calls.map((call) => parseArgs(call.arguments))
      calls.forEach((call, i) => callbacks.onToolCall(call, args[i]))
      const outcomes = await Promise.all(calls.map(async (call, i) => {
        let outcome: ToolOutcome | undefined
        if (approve && tools.needsApproval(call.name)) {
          const asked = performance.now()
          const decision = await approve(call, args[i])
          if (!decision.approved) {
            const cancelled = signal.aborted
            outcome = { ok: false, error: cancelled ? 'cancelled' : decision.error, durationMs: Math.round(performance.now() - asked), failure: cancelled ? 'cancelled' : 'declined' }
          }
        }
        outcome ??= await tools.run({ name: call.name, arguments: call.arguments }, { signal, sessionId, principal, ...(opts.logger ? { logger: opts.logger } : {}) })
        callbacks.onToolResult(call, outcome)
        return outcome
      }))
      calls.forEach((call, i) => messages.push({ role: 'tool', tool_call_id: call.id, content: toolMessageContent(outcomes[i]) }))
      if (signal.aborted) return done('cancelled')
      if (steps >= maxSteps) return done('tool_limit')
    }
  } catch (err) {
    if (signal.aborted) return done('cancelled')
    return done('error', { code: 'llm_error', message: `turn failed: ${err instanceof Error ? err.message : String(err)}`, retryable: true })
  }
}
