/** The model port: ChatModel streams a tagged union of events; failures are events, not rejections. */
import type { ModelInfo, Usage } from '../protocol.js'

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: ToolCallRequest[] }
  | { role: 'tool'; tool_call_id: string; content: string }

/** A tool call as the OpenAI wire format carries it (arguments as a JSON string). */
export interface ToolCallRequest {
  id: string
  type: 'function'
  function: { name: string; arguments: string }
}

/** A complete tool call, its arguments fully assembled (still a string: the model may send bad JSON). */
export interface ToolCall {
  id: string
  name: string
  arguments: string
}

/** What the model is told about a tool (OpenAI `tools[]` entry). */
export interface ToolSpec {
  type: 'function'
  function: { name: string; description: string; parameters: Record<string, unknown> }
}

export type ModelFinishReason = 'stop' | 'length' | 'tool_calls'
export type ModelErrorCode = 'llm_unavailable' | 'llm_error'

export type ModelEvent =
  | { type: 'text'; text: string }
  /** Reasoning ("thinking") text some servers stream before the answer; never sent back to the model. */
  | { type: 'reasoning'; text: string }
  | { type: 'tool_call'; call: ToolCall }
  | { type: 'finish'; reason: ModelFinishReason; usage?: Usage }
  /** Terminal. llm_unavailable: failed before any output (retryable); llm_error: broke mid-answer. */
  | { type: 'error'; code: ModelErrorCode; message: string; retryable: boolean }

export interface StreamRequest {
  messages: ChatMessage[]
  tools: ToolSpec[]
  signal: AbortSignal
  /**
   * The hot path: when given, a model may hand text to it synchronously, as it is decoded, instead of
   * yielding `text` events (no promise per token). Text reaches exactly one of the two, in order; a throw
   * from it ends the stream by rethrowing. Consumers must still accept `text` events.
   */
  onText?: (text: string) => void
  /** Like `onText`, for reasoning text; a model given `onText` hands reasoning to this one (or yields `reasoning` events without it). */
  onReasoning?: (text: string) => void
}

export interface ChatModel {
  readonly info: ModelInfo
  /**
   * Streams one completion. Never throws: errors arrive as an `error` event. When `signal`
   * aborts, the upstream request is aborted and the iteration ends quietly (check signal.aborted).
   */
  stream (req: StreamRequest): AsyncIterable<ModelEvent>
  /** A non-streaming completion (used by the summary worker). Throws ModelError on failure. */
  complete (req: { messages: ChatMessage[]; signal?: AbortSignal }): Promise<string>
}

export class ModelError extends Error {
  override name = 'ModelError'
  constructor (readonly code: ModelErrorCode, message: string, readonly retryable: boolean, options?: { cause?: unknown }) {
    super(message, options)
  }
}
