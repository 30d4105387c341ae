/** Runs one turn of a live session: history → tool loop → stored tool events → exactly one assistant_message. */
import { buildHistory, DEFAULT_SYSTEM_PROMPT, estimateTokens } from '../llm/history.js'
import { createTokenMeter, type TokenMeter } from './token-meter.js'
import { runToolLoop, toolMessageContent, type TurnCallbacks } from '../llm/tool-loop.js'
import type { FinishReason } from '../protocol.js'
import type { Logger } from '../logger.js'
import { NO_METER } from '../metrics/meter.js'
import type { ChatSession, SessionDeps } from './session.js'
import { turnTelemetry } from './turn-telemetry.js'

export interface Turn {
  id: string
  abort: AbortController
  /** The turn's text deltas by index, kept while it runs so a resuming socket can catch up. */
  deltas: string[]
  /** The turn's reasoning pieces by index, kept like `deltas` for a resuming socket. */
  reasoning: string[]
  /** Set by whoever stops the turn: a cancel, the end of the disconnect grace, shutdown, or the spent token budget. */
  stopReason: 'cancelled' | 'interrupted' | 'quota' | null
  /** The owner's token count: the turn's tokens are added to it; with a `remaining`, it is cut once its estimate passes it. */
  budget?: { principal: string; remaining: number | null }
  /** Set once the turn runs (past the store's confirmation and the model queue). */
  running?: boolean
  /** Resolves true once the turn holds a model slot (MAX_CONCURRENT_TURNS), false when it was stopped while queued. */
  slot?: Promise<boolean>
  /** Settles once the turn's assistant_message is recorded. */
  done: Promise<void>
  /** `{"type":"delta","turnId":"…","index":` — serialised once per turn. */
  deltaPrefix?: string
  /** Lines about the turn: the sender socket's context (session, connection, principal, client) and the turnId. */
  log?: Logger
}

/** A stopped turn's finish reason: a spent budget ends it as `length` (DESIGN §10). */
export function finishReasonOf (stopReason: Turn['stopReason']): FinishReason | null {
  return stopReason === 'quota' ? 'length' : stopReason
}

const msToUtcMidnight = (): number => 86_400_000 - (Date.now() % 86_400_000)

/** Feeds a turn's steps, text, tool calls and tool results to its token meter (wrapping the callbacks). */
function countTokens (callbacks: TurnCallbacks, meter: TokenMeter): void {
  const { onText, onReasoning, onToolCall, onToolResult } = callbacks
  callbacks.onStep = () => { meter.step() }
  callbacks.onText = (text) => { onText(text); meter.text(text.length) }
  // Reasoning is completion tokens too: it counts against the budget like the answer.
  callbacks.onReasoning = (text) => { onReasoning?.(text); meter.text(text.length) }
  callbacks.onToolCall = (call, args) => { onToolCall(call, args); meter.toolCall(call.arguments.length) }
  callbacks.onToolResult = (call, outcome) => { onToolResult(call, outcome); meter.toolResult(toolMessageContent(outcome).length) }
}

export async function runTurn ({ session, turn, deps }: { session: ChatSession; turn: Turn; deps: SessionDeps }): Promise<void> {
  const { model, tools, config } = deps
  const logger = turn.log ?? deps.logger.child({ sessionId: session.id, turnId: turn.id })
  const started = performance.now()
  const telemetry = turnTelemetry({ meter: deps.meter ?? NO_METER, tracer: deps.tracer, sessionId: session.id, turn, model: model.info.name, started })
  let content = ''
  let reasoning = ''
  let finishReason: FinishReason = 'error'
  let usage
  let steps = 0
  let meter: TokenMeter | undefined
  try {
    const messages = buildHistory({
      events: session.context,
      systemPrompt: config.SYSTEM_PROMPT ?? DEFAULT_SYSTEM_PROMPT,
      tokenBudget: config.HISTORY_TOKEN_BUDGET
    })
    const callbacks: TurnCallbacks = {
      onText: (text) => session.delta(turn, text),
      onReasoning: (text) => session.reasoning(turn, text),
      onToolCall: (call, args) => {
        session.record({ type: 'tool_call', turnId: turn.id, callId: call.id, name: call.name, arguments: args })
      },
      onToolResult: (call, outcome) => {
        session.record({
          type: 'tool_result',
          turnId: turn.id,
          callId: call.id,
          name: call.name,
          ok: outcome.ok,
          ...(outcome.ok ? { result: outcome.result } : { error: outcome.error }),
          durationMs: Math.round(outcome.durationMs)
        })
      }
    }
    if (turn.budget) {
      // Only a counted turn (auth on) pays on the token path: an estimate of every request's prompt and of what the
      // model wrote, replaced by the model's `usage` at the end; with a budget, cut once it passes what is left.
      meter = createTokenMeter({
        promptTokens: messages.reduce((n, m) => n + estimateTokens(m), 0),
        remaining: turn.budget.remaining,
        onOver: () => {
          if (turn.stopReason) return
          turn.stopReason = 'quota'
          turn.abort.abort()
        }
      })
      countTokens(callbacks, meter)
    }
    telemetry?.instrument(callbacks)
    const result = await runToolLoop({
      model,
      tools,
      messages,
      signal: turn.abort.signal,
      maxSteps: config.MAX_TOOL_STEPS,
      sessionId: session.id,
      principal: session.owner,
      logger,
      callbacks,
      approve: (call, args) => session.approvals.ask({ turnId: turn.id, callId: call.id, name: call.name, args, signal: turn.abort.signal })
    })
    content = result.content
    reasoning = result.reasoning ?? ''
    usage = result.usage
    steps = result.steps
    finishReason = result.finishReason === 'cancelled' ? (finishReasonOf(turn.stopReason) ?? 'cancelled') : result.finishReason
    if (result.error && !turn.stopReason) {
      session.record({ type: 'error', turnId: turn.id, code: result.error.code, message: result.error.message, retryable: result.error.retryable })
    }
    if (turn.stopReason === 'quota') {
      session.record({ type: 'error', turnId: turn.id, code: 'quota_exceeded', message: 'the daily token budget was spent during this answer; it was cut', retryable: false, retryAfterMs: msToUtcMidnight() })
    }
  } catch (err) {
    // The tool loop never throws by contract; this guards the session against a bug, not a model failure.
    logger.error({ err }, 'turn failed unexpectedly')
    content = turn.deltas.join('')
    reasoning = turn.reasoning.join('')
    finishReason = finishReasonOf(turn.stopReason) ?? 'error'
    session.record({ type: 'error', turnId: turn.id, code: 'internal_error', message: 'internal error while running the turn', retryable: true })
  }
  session.record({ type: 'assistant_message', turnId: turn.id, content, finishReason, ...(usage ? { usage } : {}), ...(reasoning ? { reasoning } : {}) })
  telemetry?.end(finishReason, usage)
  if (turn.budget) {
    // The model's count when the answer ran to its end; a cut answer has none (or only earlier steps'): the estimate.
    const estimated = meter?.estimated ?? 0
    const tokens = turn.stopReason ? Math.max(estimated, usage?.totalTokens ?? 0) : usage?.totalTokens ?? estimated
    void deps.budget?.record(turn.budget.principal, tokens)
  }
  logger.info({ finishReason, steps, tokens: usage?.totalTokens, ms: Math.round(performance.now() - started) }, 'turn done')
}
