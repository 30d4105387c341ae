/** The meter port: what the chat core, the writer and the socket route count. NO_METER (METRICS=off) does nothing. */
import type { FinishReason, Usage } from '../protocol.js'
import type { ToolFailure } from '../tools/types.js'

export type ModelOutcome = 'ok' | 'error' | 'unavailable' | 'cancelled'
export type ToolCallOutcome = 'ok' | ToolFailure
/** Where a resume (`?after=`) read what the socket missed: memory, the store (older events), or a `reset` (after beyond the log). */
export type ResumeSource = 'memory' | 'store' | 'reset'

/**
 * Every method is called off the token path (per turn, call, batch or socket), except `addedLatency`, which
 * the session samples (one delta in 64). Label values are the port's closed sets; the meter maps anything else to "other".
 */
export interface Meter {
  /** False for NO_METER: callers skip the work of measuring (timestamps, sampling). */
  readonly enabled: boolean
  /** A turn closed with its assistant_message; `deltas`: the delta frames it streamed. */
  turnEnded (finishReason: FinishReason, deltas: number): void
  /** From the start of a turn to its first text delta. */
  firstToken (seconds: number): void
  /** One model request (a step of a turn) finished. */
  modelCall (call: { outcome: ModelOutcome; seconds: number; usage?: Usage }): void
  toolCall (call: { tool: string; outcome: ToolCallOutcome; seconds: number }): void
  /** An error frame was sent (a refusal to its sender, or a stored error of a turn). */
  error (code: string): void
  resume (source: ResumeSource): void
  /** A socket closed with this code (the one the client was sent). */
  wsClosed (code: number): void
  /** One round trip of the event writer to the store (successful or not). */
  storeWrite (seconds: number): void
  /** From a model chunk's decoding to its frame being written to the sockets. */
  addedLatency (seconds: number): void
}

const nothing = (): void => {}

export const NO_METER: Meter = Object.freeze({
  enabled: false,
  turnEnded: nothing,
  firstToken: nothing,
  modelCall: nothing,
  toolCall: nothing,
  error: nothing,
  resume: nothing,
  wsClosed: nothing,
  storeWrite: nothing,
  addedLatency: nothing
})

/** A tool call's outcome label from the registry's answer. */
export function toolOutcomeOf (outcome: { ok: boolean; failure?: ToolFailure }): ToolCallOutcome {
  return outcome.ok ? 'ok' : outcome.failure ?? 'error'
}
