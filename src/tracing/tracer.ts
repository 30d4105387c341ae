/** The tracing port: a span per turn holding its model calls and tool calls, and one per store batch. Absent: nothing traced. */

export type SpanAttributes = Record<string, string | number | boolean | string[] | undefined>

export interface SpanHandle {
  /** Ends the span; `error` marks it failed (a short reason, never user text). */
  end (attributes?: SpanAttributes, error?: string): void
}

export interface TurnTrace {
  /** `chat {model}`, a child of the turn. */
  modelCall (): SpanHandle
  /** `execute_tool {name}`, a child of the turn. */
  toolCall (name: string, callId: string): SpanHandle
  end (finishReason: string, attributes?: SpanAttributes): void
}

export interface Tracer {
  startTurn (turn: { sessionId: string; turnId: string; model: string }): TurnTrace
  /** One event-writer round trip to the store. */
  storeBatch (events: number): SpanHandle
  /** Exports what is buffered and stops. */
  shutdown (): Promise<void>
}
