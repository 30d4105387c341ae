/** Rebuilds the model's context from a session's event log, trimmed to a token budget oldest turns first. */
import type { StoredEvent } from '../protocol.js'
import { toolMessageContent } from './tool-loop.js'
import type { ChatMessage, ToolCallRequest } from './types.js'

export const DEFAULT_SYSTEM_PROMPT = [
  'You are a helpful assistant in a realtime chat: your answer streams to the user as you write it, so get to the point and keep it short unless asked for detail.',
  'You can call tools. Use get_system_metrics for questions about the server (CPU, memory, uptime, load) and fetch_user_profile to look up a user by id; do not invent figures or profiles a tool can give you.',
  'When a tool fails, say so plainly and explain what went wrong. Use Markdown when it helps readability.'
].join(' ')

const INTERRUPTED = 'Error: no result (interrupted)'

/** ~4 characters a token, plus a few for the message envelope. */
export const estimateTokens = (m: ChatMessage): number => {
  let chars = m.content?.length ?? 0
  if (m.role === 'assistant') for (const c of m.tool_calls ?? []) chars += c.function.name.length + c.function.arguments.length + 16
  return Math.ceil(chars / 4) + 4
}

interface TurnBuild {
  user: string
  /** Groups of calls: one per model step (a tool_call after a tool_result starts a new step). */
  steps: Array<{ calls: ToolCallRequest[]; results: Map<string, string> }>
  answer: string
}

const argumentsText = (args: unknown): string => (typeof args === 'string' ? args : JSON.stringify(args ?? {}))

function collectTurns (events: readonly StoredEvent[]): TurnBuild[] {
  const turns = new Map<string, TurnBuild>()
  let lastToolEvent: 'call' | 'result' | undefined
  for (const e of events) {
    if (e.type === 'user_message') {
      turns.set(e.turnId, { user: e.content, steps: [], answer: '' })
      lastToolEvent = undefined
      continue
    }
    if (e.type !== 'tool_call' && e.type !== 'tool_result' && e.type !== 'assistant_message') continue
    const turn = turns.get(e.turnId)
    if (!turn) continue // its user_message is not in this log: nothing to hang it on
    if (e.type === 'tool_call') {
      if (lastToolEvent !== 'call' || turn.steps.length === 0) turn.steps.push({ calls: [], results: new Map() })
      turn.steps[turn.steps.length - 1].calls.push({ id: e.callId, type: 'function', function: { name: e.name, arguments: argumentsText(e.arguments) } })
      lastToolEvent = 'call'
    } else if (e.type === 'tool_result') {
      const step = [...turn.steps].reverse().find((s) => s.calls.some((c) => c.id === e.callId))
      step?.results.set(e.callId, toolMessageContent(e))
      lastToolEvent = 'result'
    } else {
      turn.answer = e.content
    }
  }
  return [...turns.values()]
}

function turnMessages (turn: TurnBuild): ChatMessage[] {
  const out: ChatMessage[] = [{ role: 'user', content: turn.user }]
  for (const step of turn.steps) {
    out.push({ role: 'assistant', content: null, tool_calls: step.calls })
    // Every call needs its tool message, or the API refuses the whole history.
    for (const c of step.calls) out.push({ role: 'tool', tool_call_id: c.id, content: step.results.get(c.id) ?? INTERRUPTED })
  }
  if (turn.answer.trim() !== '') out.push({ role: 'assistant', content: turn.answer })
  return out
}

export interface BuildHistoryOptions {
  events: readonly StoredEvent[]
  systemPrompt?: string
  /** HISTORY_TOKEN_BUDGET, estimated at ~4 characters a token. */
  tokenBudget: number
}

/**
 * user_message → user; a turn's tool calls → assistant(tool_calls) + one tool message per call;
 * assistant_message → assistant (when non-empty); lifecycle and error events are skipped.
 * Whole turns are dropped oldest first to fit the budget; the system prompt and the latest turn always stay.
 */
export function buildHistory ({ events, systemPrompt = DEFAULT_SYSTEM_PROMPT, tokenBudget }: BuildHistoryOptions): ChatMessage[] {
  const system: ChatMessage[] = systemPrompt ? [{ role: 'system', content: systemPrompt }] : []
  const turns = collectTurns(events).map(turnMessages)
  if (turns.length === 0) return system

  const cost = (msgs: ChatMessage[]) => msgs.reduce((n, m) => n + estimateTokens(m), 0)
  let used = cost(system) + cost(turns[turns.length - 1])
  let first = turns.length - 1
  while (first > 0) {
    const c = cost(turns[first - 1])
    if (used + c > tokenBudget) break
    used += c
    first--
  }
  return [...system, ...turns.slice(first).flat()]
}
