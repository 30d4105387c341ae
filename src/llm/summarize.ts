/** Session summaries: a bounded transcript of the event log, summarised by the model's non-streaming call. */
import type { StoredEvent } from '../protocol.js'
import { Transcript } from './transcript.js'
import { ModelError, type ChatMessage, type ChatModel } from './types.js'

const SYSTEM = 'You write short, factual summaries of chat sessions between a user and an AI assistant.'
const INSTRUCTION = 'Summarise the conversation below in two to four sentences: what the user wanted, what the assistant answered or found out (including tool results that mattered), and anything left unresolved. Write plain prose, no lists, no preamble.'

/** The request summarizeSession sends for a transcript (exported for tests and for models that want to inspect it). */
export function summaryMessages (transcript: string): ChatMessage[] {
  return [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: `${INSTRUCTION}\n\n${transcript}` }
  ]
}

/**
 * Returns the trimmed, non-empty summary; throws ModelError when the model fails or says nothing. `events` may be
 * read page by page from the store (an async iterable): only the bounded transcript is kept, never the whole log.
 */
export async function summarizeSession ({ model, events, signal }: {
  model: ChatModel
  events: Iterable<StoredEvent> | AsyncIterable<StoredEvent>
  signal?: AbortSignal
}): Promise<string> {
  const transcript = new Transcript()
  for await (const event of events) {
    signal?.throwIfAborted()
    transcript.add(event)
  }
  if (!transcript.hasUserMessage) return 'No messages were exchanged in this session.'
  const text = (await model.complete({ messages: summaryMessages(transcript.toString()), ...(signal ? { signal } : {}) })).trim()
  if (!text) throw new ModelError('llm_error', 'the model returned an empty summary', true)
  return text
}
