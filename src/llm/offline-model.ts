/** The built-in offline model: deterministic, streams word by word, really calls the tools; with a fault knob for tests and demos. */
import type { ModelInfo, Usage } from '../protocol.js'
import { answerFromToolResults, extractiveSummary, planFor, reasoningFor } from './offline-answers.js'
import { ModelError, type ChatMessage, type ChatModel, type ModelEvent, type StreamRequest } from './types.js'

export type OfflineFault =
  | { kind: 'none' }
  | { kind: 'fail' }
  | { kind: 'slow'; ms: number }
  | { kind: 'cut'; tokens: number }

export interface OfflineModelOptions {
  /** Pause between streamed words (OFFLINE_TOKEN_DELAY_MS). */
  tokenDelayMs: number
  /** OFFLINE_FAULT: none | fail | slow:<ms> | cut:<n>. */
  fault?: string
  name?: string
}

export function parseFault (fault = 'none'): OfflineFault {
  const m = fault.trim().match(/^(none|fail|slow:(\d+)|cut:(\d+))$/)
  if (!m) throw new Error(`Invalid offline fault "${fault}": expected none, fail, slow:<ms> or cut:<tokens>`)
  if (m[2] !== undefined) return { kind: 'slow', ms: Number(m[2]) }
  if (m[3] !== undefined) return { kind: 'cut', tokens: Number(m[3]) }
  return { kind: m[1] as 'none' | 'fail' }
}

/** Resolves true after ms, or false as soon as the signal aborts. A 0 ms pause still lets I/O run. */
function pause (ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false)
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer); clearImmediate(immediate); signal?.removeEventListener('abort', onAbort); resolve(ok)
    }
    const onAbort = () => done(false)
    let timer: NodeJS.Timeout | undefined
    let immediate: NodeJS.Immediate | undefined
    if (ms > 0) timer = setTimeout(() => done(true), ms)
    else immediate = setImmediate(() => done(true))
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

const estimateTokens = (messages: ChatMessage[]) =>
  Math.ceil(messages.reduce((n, m) => n + (m.content?.length ?? 0) + 4, 0) / 4)

const tokenize = (text: string): string[] => text.split(/\s+/).filter(Boolean).map((w, i, all) => (i < all.length - 1 ? `${w} ` : w))

export function createOfflineModel ({ tokenDelayMs, fault, name }: OfflineModelOptions): ChatModel {
  const knob = parseFault(fault)
  const info: ModelInfo = { provider: 'offline', name: name ?? 'offline-demo', offline: true }

  async function * stream ({ messages, tools, signal }: StreamRequest): AsyncGenerator<ModelEvent> {
    if (signal.aborted) return
    if (knob.kind === 'fail') {
      yield { type: 'error', code: 'llm_unavailable', retryable: true, message: 'offline model refused to start (OFFLINE_FAULT=fail)' }
      return
    }
    if (knob.kind === 'slow' && !(await pause(knob.ms, signal))) return

    const promptTokens = estimateTokens(messages)
    const last = messages[messages.length - 1]
    let text: string
    if (last?.role === 'tool') {
      text = answerFromToolResults(messages)
    } else {
      const latestUser = [...messages].reverse().find((m) => m.role === 'user')?.content ?? ''
      const plan = planFor({ text: latestUser, toolNames: new Set(tools.map((t) => t.function.name)) })
      // A few words of reasoning first, like a reasoning model (the page shows them in its Thinking block).
      for (const word of tokenize(reasoningFor(plan))) {
        if (!(await pause(tokenDelayMs, signal))) return
        yield { type: 'reasoning', text: word }
      }
      if (plan.kind === 'tool') {
        if (!(await pause(tokenDelayMs, signal))) return
        const step = messages.filter((m) => m.role === 'assistant' && m.tool_calls?.length).length + 1
        yield { type: 'tool_call', call: { id: `call_offline_${step}`, name: plan.name, arguments: JSON.stringify(plan.args) } }
        yield { type: 'finish', reason: 'tool_calls', usage: usage(promptTokens, 12) }
        return
      }
      text = plan.text
    }

    const tokens = tokenize(text)
    for (let i = 0; i < tokens.length; i++) {
      if (knob.kind === 'cut' && i === knob.tokens) {
        yield { type: 'error', code: 'llm_error', retryable: true, message: `stream cut after ${knob.tokens} tokens (OFFLINE_FAULT)` }
        return
      }
      if (!(await pause(tokenDelayMs, signal))) return
      yield { type: 'text', text: tokens[i] }
    }
    if (signal.aborted) return
    yield { type: 'finish', reason: 'stop', usage: usage(promptTokens, tokens.length) }
  }

  async function complete ({ messages, signal }: { messages: ChatMessage[]; signal?: AbortSignal }): Promise<string> {
    if (knob.kind === 'fail') throw new ModelError('llm_unavailable', 'offline model refused to start (OFFLINE_FAULT=fail)', true)
    if (knob.kind === 'slow' && !(await pause(knob.ms, signal))) throw new ModelError('llm_unavailable', 'request was cancelled', true)
    if (signal?.aborted) throw new ModelError('llm_unavailable', 'request was cancelled', true)
    return extractiveSummary(messages)
  }

  return { info, stream, complete }
}

const usage = (promptTokens: number, completionTokens: number): Usage =>
  ({ promptTokens, completionTokens, totalTokens: promptTokens + completionTokens })
