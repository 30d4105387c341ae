/** Session summaries: a bounded transcript of the event log, summarised by the model's non-streaming call. */
import type { StoredEvent } from '../protocol.js'
import { ModelError, type ChatMessage, type ChatModel } from './types.js'

/** Transcript size sent to the model; beyond it the middle of the session is left out. */
export const MAX_TRANSCRIPT_CHARS = 12_000
const MAX_LINE_CHARS = 1_000

const SYSTEM = 'You write short, factual summaries of chat sessions between a user and an AI assistant.'
const INSTRUCTION = 'Summarise the conversation below in two to four sentences: what the user wanted, what the assistant answered or found out (including tool results that mattered), and anything left unresolved. Write plain prose, no lists, no preamble.'

const line = (s: string) => {
  const flat = s.replace(/\s+/g, ' ').trim()
  return flat.length > MAX_LINE_CHARS ? `${flat.slice(0, MAX_LINE_CHARS)}…` : flat
}

const brief = (v: unknown) => {
  const s = typeof v === 'string' ? v : JSON.stringify(v ?? null) ?? ''
  return s.length > 200 ? `${s.slice(0, 200)}…` : s
}

/** One line per message or tool use: "User: …", "Assistant: …", "Tool <name>: ok …" / "Tool <name>: failed …". */
export function buildTranscript (events: StoredEvent[], maxChars = MAX_TRANSCRIPT_CHARS): string {
  const lines: string[] = []
  for (const e of events) {
    if (e.type === 'user_message') lines.push(`User: ${line(e.content)}`)
    else if (e.type === 'assistant_message' && e.content.trim()) {
      lines.push(`Assistant: ${line(e.content)}${e.finishReason === 'stop' ? '' : ` [${e.finishReason}]`}`)
    } else if (e.type === 'tool_result') {
      lines.push(`Tool ${e.name}: ${e.ok ? `ok ${brief(e.result)}` : `failed (${brief(e.error)})`}`)
    }
  }
  const full = lines.join('\n')
  if (full.length <= maxChars) return full
  // Keep the opening (what the session was about) and the end (where it got to).
  const head: string[] = []; const tail: string[] = []
  let size = 0
  for (let i = 0, j = lines.length - 1; i <= j;) {
    const takeHead = head.length <= tail.length
    const next = takeHead ? lines[i] : lines[j]
    if (size + next.length + 1 > maxChars - 40) break
    size += next.length + 1
    if (takeHead) { head.push(next); i++ } else { tail.unshift(next); j-- }
  }
  return [...head, `[… ${lines.length - head.length - tail.length} lines left out …]`, ...tail].join('\n')
}

/** The request summarizeSession sends (exported for tests and for models that want to inspect it). */
export function summaryMessages (events: StoredEvent[]): ChatMessage[] {
  return [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: `${INSTRUCTION}\n\n${buildTranscript(events)}` }
  ]
}

/** Returns the trimmed, non-empty summary; throws ModelError when the model fails or says nothing. */
export async function summarizeSession ({ model, events, signal }: { model: ChatModel; events: StoredEvent[]; signal?: AbortSignal }): Promise<string> {
  if (!events.some((e) => e.type === 'user_message')) return 'No messages were exchanged in this session.'
  const text = (await model.complete({ messages: summaryMessages(events), ...(signal ? { signal } : {}) })).trim()
  if (!text) throw new ModelError('llm_error', 'the model returned an empty summary', true)
  return text
}
