/** Runs one turn of a live session: history → tool loop → stored tool events → exactly one assistant_message. */
import { buildHistory, DEFAULT_SYSTEM_PROMPT } from '../llm/history.js'
import { runToolLoop } from '../llm/tool-loop.js'
import type { FinishReason } from '../protocol.js'
import type { ChatSession, SessionDeps } from './session.js'

export interface Turn {
  id: string
  abort: AbortController
  /** The turn's text deltas by index, kept while it runs so a resuming socket can catch up. */
  deltas: string[]
  /** Set by whoever stops the turn: a cancel, the end of the disconnect grace, or shutdown. */
  stopReason: 'cancelled' | 'interrupted' | null
  /** Settles once the turn's assistant_message is recorded. */
  done: Promise<void>
  /** `{"type":"delta","turnId":"…","index":` — serialised once per turn. */
  deltaPrefix?: string
}

export async function runTurn ({ session, turn, deps }: { session: ChatSession; turn: Turn; deps: SessionDeps }): Promise<void> {
  const { model, tools, config, logger } = deps
  const started = performance.now()
  let content = ''
  let finishReason: FinishReason = 'error'
  let usage
  let steps = 0
  try {
    const messages = buildHistory({
      events: session.context,
      systemPrompt: config.SYSTEM_PROMPT ?? DEFAULT_SYSTEM_PROMPT,
      tokenBudget: config.HISTORY_TOKEN_BUDGET
    })
    const result = await runToolLoop({
      model,
      tools,
      messages,
      signal: turn.abort.signal,
      maxSteps: config.MAX_TOOL_STEPS,
      sessionId: session.id,
      callbacks: {
        onText: (text) => session.delta(turn, text),
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
    })
    content = result.content
    usage = result.usage
    steps = result.steps
    finishReason = result.finishReason === 'cancelled' ? (turn.stopReason ?? 'cancelled') : result.finishReason
    if (result.error && !turn.stopReason) {
      session.record({ type: 'error', turnId: turn.id, code: result.error.code, message: result.error.message, retryable: result.error.retryable })
    }
  } catch (err) {
    // The tool loop never throws by contract; this guards the session against a bug, not a model failure.
    logger.error({ err, sessionId: session.id, turnId: turn.id }, 'turn failed unexpectedly')
    content = turn.deltas.join('')
    finishReason = turn.stopReason ?? 'error'
    session.record({ type: 'error', turnId: turn.id, code: 'internal_error', message: 'internal error while running the turn', retryable: true })
  }
  session.record({ type: 'assistant_message', turnId: turn.id, content, finishReason, ...(usage ? { usage } : {}) })
  logger.info({ sessionId: session.id, turnId: turn.id, finishReason, steps, tokens: usage?.totalTokens, ms: Math.round(performance.now() - started) }, 'turn done')
}
