/** What the offline model says: intent detection on the user's words and prose built from real tool results. */
import { clip } from '../text.js'
import type { ChatMessage } from './types.js'

export type OfflinePlan =
  | { kind: 'tool'; name: string; args: Record<string, unknown> }
  | { kind: 'text'; text: string }

const METRICS = /\b(cpu|load|memory|ram|uptime|system|metrics?|server|heap)\b/i
const PROFILE = /\b(users?|profiles?|who\s+is)\b/i
const NOT_IDS = new Set(['profile', 'profiles', 'id', 'is', 'with', 'the', 'a', 'an', 'of', 'for', 'named', 'called', 'please', 'info', 'details', 'data'])

const OWN = /\b(my|me|myself|mine)\b/i

/**
 * The user id a message names: "user-42", "user alice", "profile of bob"; undefined for the speaker's own ("my
 * profile": the tool answers for whoever is signed in); 'demo' when none.
 */
export function extractUserId (text: string): string | undefined {
  const clean = (s: string) => s.replace(/[.@_-]+$/, '')
  const direct = text.match(/\b(user[-_][A-Za-z0-9_.@-]+)/i)
  if (direct) return clean(direct[1])
  const patterns = [
    /\buser(?:\s+id)?\s*[:#]?\s*["'“]?([A-Za-z0-9_.@-]+)/gi,
    /\b(?:of|for|named|called|is)\s+["'“]?([A-Za-z0-9_.@-]+)/gi
  ]
  for (const re of patterns) {
    for (const m of text.matchAll(re)) {
      const id = clean(m[1])
      if (id && !NOT_IDS.has(id.toLowerCase()) && id.length <= 64) return id
    }
  }
  return OWN.test(text) ? undefined : 'demo'
}

const userArgs = (userId: string | undefined): Record<string, unknown> => userId === undefined ? {} : { userId }

const quote = (s: string, max = 60) => {
  const flat = s.replace(/\s+/g, ' ').trim()
  return flat.length > max ? clip(flat, max - 1) : flat
}

const GiB = 1024 ** 3
const MiB = 1024 ** 2
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '?')
const duration = (s: number) => {
  const d = Math.floor(s / 86_400); const h = Math.floor((s % 86_400) / 3600); const m = Math.floor((s % 3600) / 60)
  return d > 0 ? `${d} d ${h} h ${m} min` : h > 0 ? `${h} h ${m} min` : `${m} min ${Math.floor(s % 60)} s`
}

function describeMetrics (r: any): string {
  const cores: number = r?.cpu?.cores ?? 0
  const sessions: number = r?.liveSessions ?? 0
  return `CPU load is ${fmt(r?.cpu?.loadPercent)} % across ${cores} ${cores === 1 ? 'core' : 'cores'}, ` +
    `memory ${fmt((r?.memory?.usedBytes ?? NaN) / GiB)} of ${fmt((r?.memory?.totalBytes ?? NaN) / GiB, 0)} GiB used (${fmt(r?.memory?.usedPercent)} %), ` +
    `uptime ${duration(Number(r?.uptimeS ?? 0))}. This server process uses ${fmt((r?.process?.rssBytes ?? NaN) / MiB, 0)} MiB of memory ` +
    `on Node ${r?.nodeVersion ?? '?'}, with ${sessions} live ${sessions === 1 ? 'session' : 'sessions'}.`
}

function describeProfile (r: any): string {
  const prefs = r?.preferences && typeof r.preferences === 'object' ? Object.keys(r.preferences) : []
  return `User ${r?.userId ?? '?'} is ${r?.name ?? 'unnamed'} (${r?.email ?? 'no email'}), on the ${r?.plan ?? 'unknown'} plan, ` +
    `member since ${String(r?.createdAt ?? '?').slice(0, 10)}${prefs.length ? `, with preferences for ${prefs.join(', ')}` : ''}.`
}

/** Prose for the tool results that end the conversation so far. */
export function answerFromToolResults (messages: ChatMessage[]): string {
  let start = messages.length
  while (start > 0 && messages[start - 1].role === 'tool') start--
  const results = messages.slice(start) as Array<Extract<ChatMessage, { role: 'tool' }>>
  const asked = messages[start - 1]
  const names = new Map<string, string>()
  if (asked?.role === 'assistant') for (const c of asked.tool_calls ?? []) names.set(c.id, c.function.name)

  const parts = results.map((m) => {
    const name = names.get(m.tool_call_id) ?? 'tool'
    if (m.content.startsWith('Error:')) return `The ${name} tool failed: ${quote(m.content.slice(6), 160)}.`
    let data: unknown
    try { data = JSON.parse(m.content) } catch { data = m.content }
    if (name === 'get_system_metrics') return describeMetrics(data)
    if (name === 'fetch_user_profile') return describeProfile(data)
    return `The ${name} tool returned ${quote(m.content, 160)}.`
  })
  return `${parts.join(' ')} (Answered by the built-in offline model from the real tool results.)`
}

/** Decides the next step for the latest user message. */
export function planFor ({ text, toolNames }: { text: string; toolNames: Set<string> }): OfflinePlan {
  if (METRICS.test(text) && toolNames.has('get_system_metrics')) return { kind: 'tool', name: 'get_system_metrics', args: {} }
  if (PROFILE.test(text) && toolNames.has('fetch_user_profile')) return { kind: 'tool', name: 'fetch_user_profile', args: userArgs(extractUserId(text)) }
  return {
    kind: 'text',
    text: `I am the built-in offline model, so this is a canned reply to “${quote(text)}”. ` +
      'I can still run real tools: ask me about the server’s CPU, memory or uptime, or for the profile of user alice. ' +
      'To chat with a real model, set OPENAI_API_KEY (optionally OPENAI_BASE_URL and LLM_MODEL) and restart the server.'
  }
}

/** The short "thinking" the offline model streams before it acts on a user message, so the page shows reasoning with no key. */
export function reasoningFor (plan: OfflinePlan): string {
  if (plan.kind === 'tool') return `The user asks something the ${plan.name} tool can answer. I will call it rather than guess.`
  return 'No tool fits this message, so I will give the canned offline reply.'
}

/** Extractive summary of a transcript ("User: …", "Assistant: …", "Tool name: …" lines) or, failing that, of the messages. */
export function extractiveSummary (messages: ChatMessage[]): string {
  const text = messages.filter((m) => m.role === 'user' || m.role === 'system').map((m) => m.content ?? '').join('\n')
  const users: string[] = []; const assistants: string[] = []; const tools = new Set<string>()
  for (const line of text.split('\n')) {
    const m = line.match(/^(User|Assistant|Tool)(?:\s+([A-Za-z0-9_.-]+))?:\s*(.*)$/)
    if (!m) continue
    if (m[1] === 'User') users.push(m[3])
    else if (m[1] === 'Assistant') assistants.push(m[3])
    else if (m[2]) tools.add(m[2])
  }
  if (users.length === 0) {
    for (const m of messages) {
      if (m.role === 'user') users.push(m.content)
      if (m.role === 'assistant' && m.content) assistants.push(m.content)
      if (m.role === 'assistant') for (const c of m.tool_calls ?? []) tools.add(c.function.name)
    }
  }
  const count = users.length + assistants.length
  if (users.length === 0) return `An empty session: no user messages; ${count} messages.`
  const more = users.length > 1 ? ` and ${users.length - 1} more ${users.length === 2 ? 'question' : 'questions'}` : ''
  const answer = assistants.length ? `the assistant last said “${quote(assistants[assistants.length - 1], 80)}”` : 'the assistant did not answer'
  return `The user asked about “${quote(users[0], 80)}”${more}; ${answer}; tools used: ${tools.size ? [...tools].join(', ') : 'none'}; ${count} messages.`
}
