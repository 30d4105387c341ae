/** Pure reducer folding Chat Completions stream chunks into text deltas, complete tool calls and usage. */
import type { Usage } from '../protocol.js'
import type { ToolCall } from './types.js'

/** The parts of a `chat.completion.chunk` the reducer reads; everything is optional on purpose. */
export interface ChunkLike {
  choices?: Array<{
    index?: number
    delta?: {
      content?: string | null
      /** Reasoning text: `reasoning_content` (DeepSeek, older vLLM, llama.cpp) or `reasoning` (vLLM ≥ 0.10, OpenRouter). */
      reasoning_content?: string | null
      reasoning?: string | null
      tool_calls?: Array<{
        index?: number
        id?: string | null
        function?: { name?: string | null; arguments?: string | null } | null
      }> | null
    } | null
    finish_reason?: string | null
  }> | null
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null
}

/** A tool call while its fragments are still arriving. */
export interface PartialToolCall {
  index: number
  id: string
  name: string
  arguments: string
}

export interface StreamAccumulator {
  /** Keyed by `tool_calls[].index`, in order of first appearance. */
  readonly toolCalls: readonly PartialToolCall[]
  readonly finishReason: string | null
  readonly usage: Usage | undefined
  /** Chunks folded so far, including empty ones. */
  readonly chunks: number
  /** Text received so far (all deltas concatenated). */
  readonly text: string
  /** Reasoning characters received so far (the text itself goes to the consumer, not kept here). */
  readonly reasoningChars: number
}

export const emptyAccumulator = (): StreamAccumulator =>
  ({ toolCalls: [], finishReason: null, usage: undefined, chunks: 0, text: '', reasoningChars: 0 })

const toUsage = (u: NonNullable<ChunkLike['usage']>): Usage => {
  const promptTokens = u.prompt_tokens ?? 0
  const completionTokens = u.completion_tokens ?? 0
  return { promptTokens, completionTokens, totalTokens: u.total_tokens ?? promptTokens + completionTokens }
}

/**
 * Folds one chunk. Returns the new state, the text delta this chunk carried ('' when none) and its reasoning
 * delta ('' when none; `reasoning_content` wins when a server sends both names).
 * Chunks with `choices: []` (Azure's prompt-filter chunk, the trailing usage chunk) and
 * `content: null` are fine; only choice 0 is read (we never ask for n > 1).
 */
export function accumulateChunk (state: StreamAccumulator, chunk: ChunkLike): { state: StreamAccumulator; text: string; reasoning: string } {
  const usage = chunk.usage ? toUsage(chunk.usage) : state.usage
  // Stryker disable next-line ArrayDeclaration: a string in place of a choice has no delta and no finish_reason either
  const choices = Array.isArray(chunk.choices) ? chunk.choices : []
  const choice = choices.find((c) => (c?.index ?? 0) === 0)
  const delta = choice?.delta ?? undefined
  const text = typeof delta?.content === 'string' ? delta.content : ''
  // Two property reads when a chunk has no reasoning: nothing else on the token path.
  const rawReasoning = delta ? (delta.reasoning_content ?? delta.reasoning) : undefined
  const reasoning = typeof rawReasoning === 'string' ? rawReasoning : ''

  let toolCalls = state.toolCalls
  if (Array.isArray(delta?.tool_calls) && delta.tool_calls.length > 0) {
    const next = toolCalls.map((c) => ({ ...c }))
    for (const frag of delta.tool_calls) {
      // Servers that omit `index` send one call per chunk: treat a fragment with a new id as a new call.
      const index = typeof frag.index === 'number'
        ? frag.index
        : (frag.id && !next.some((c) => c.id === frag.id) ? next.length : Math.max(0, next.length - 1))
      let call = next.find((c) => c.index === index)
      if (!call) {
        call = { index, id: '', name: '', arguments: '' }
        next.push(call)
      }
      if (frag.id) call.id = frag.id
      // The name comes whole in the call's first fragment; some servers repeat it later.
      if (frag.function?.name && !call.name) call.name = frag.function.name
      if (frag.function?.arguments) call.arguments += frag.function.arguments
    }
    toolCalls = next
  }

  return {
    state: {
      toolCalls,
      finishReason: choice?.finish_reason ?? state.finishReason,
      usage,
      chunks: state.chunks + 1,
      text: state.text + text,
      reasoningChars: state.reasoningChars + reasoning.length
    },
    text,
    reasoning
  }
}

/** The assembled tool calls, ordered by index; a call the server sent without an id gets a stable one. */
export function completedToolCalls (state: StreamAccumulator): ToolCall[] {
  return [...state.toolCalls]
    .sort((a, b) => a.index - b.index)
    .map((c) => ({ id: c.id || `call_${c.index}`, name: c.name, arguments: c.arguments }))
}
