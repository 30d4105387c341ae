/** ChatModel over any OpenAI-compatible Chat Completions endpoint, through the official `openai` SDK. */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai'
import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions'
import type { Logger } from '../logger.js'
import type { ModelInfo } from '../protocol.js'
import { accumulateChunk, completedToolCalls, emptyAccumulator } from './accumulate.js'
import { readSse } from './sse-reader.js'
import { ModelError, type ChatMessage, type ChatModel, type ModelEvent, type ModelFinishReason, type StreamRequest } from './types.js'

export interface OpenAIModelOptions {
  apiKey: string
  /** Unset → api.openai.com. */
  baseURL?: string
  model: string
  temperature?: number
  maxTokens?: number
  /** Per attempt: time to response headers (the SDK retries), then to the first chunk and between chunks. */
  timeoutMs: number
  /** SDK retries for connection errors, timeouts, 408/409/429/5xx before the stream starts. */
  maxRetries: number
  logger: Logger
  fetch?: typeof fetch
}

type ErrorEvent = Extract<ModelEvent, { type: 'error' }>

/** Text events queued for a consumer without a sink before the body is paused. */
const MAX_QUEUED = 256

const RETRYABLE_STATUS = (s: number) => s === 408 || s === 409 || s === 429 || s >= 500

/** 'openai' for the official endpoint, 'azure-openai' for Azure, else 'openai-compatible'. */
export function providerLabel (baseURL?: string): string {
  if (!baseURL) return 'openai'
  let host = ''
  try { host = new URL(baseURL).hostname } catch { return 'openai-compatible' }
  if (host === 'api.openai.com') return 'openai'
  if (host.endsWith('.openai.azure.com')) return 'azure-openai'
  return 'openai-compatible'
}

const detail = (err: APIError): string => {
  const inner = (err.error as { message?: unknown } | undefined)?.message
  const text = typeof inner === 'string' && inner ? inner : err.message
  return text.replace(/^\d{3}\s+/, '').slice(0, 300)
}

/** Maps a failure that happened before any output (request refused or never answered). */
export function mapStartError (err: unknown, opts: { timeoutMs: number; maxRetries: number }): ErrorEvent {
  const tries = opts.maxRetries > 0 ? ` (after ${opts.maxRetries} ${opts.maxRetries === 1 ? 'retry' : 'retries'})` : ''
  if (err instanceof APIConnectionTimeoutError) {
    return { type: 'error', code: 'llm_unavailable', retryable: true, message: `model endpoint timed out after ${opts.timeoutMs} ms${tries}` }
  }
  if (err instanceof APIConnectionError) {
    return { type: 'error', code: 'llm_unavailable', retryable: true, message: `could not reach the model endpoint${tries}: ${err.message}` }
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    if (RETRYABLE_STATUS(err.status)) {
      return { type: 'error', code: 'llm_unavailable', retryable: true, message: `model endpoint unavailable (${err.status})${tries}: ${detail(err)}` }
    }
    return { type: 'error', code: 'llm_unavailable', retryable: false, message: `model endpoint refused the request (${err.status}): ${detail(err)}` }
  }
  const message = err instanceof Error ? err.message : String(err)
  return { type: 'error', code: 'llm_unavailable', retryable: false, message: `model request failed: ${message}` }
}

/** Maps a failure while reading the stream. */
function mapStreamError (err: unknown, outputBegan: boolean): ErrorEvent {
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : ''
  const what = err instanceof SyntaxError
    ? `malformed chunk from the model endpoint: ${err.message}`
    : err instanceof APIError ? `model endpoint sent an error mid-stream: ${detail(err)}` : `model stream broke: ${err instanceof Error ? err.message : String(err)}${cause}`
  return outputBegan
    ? { type: 'error', code: 'llm_error', retryable: true, message: what }
    : { type: 'error', code: 'llm_unavailable', retryable: true, message: what }
}

const finishReason = (raw: string | null, hasToolCalls: boolean): ModelFinishReason =>
  hasToolCalls ? 'tool_calls' : raw === 'length' ? 'length' : 'stop'

/** The SDK's own log lines, kept off the info level and without their detail objects (they may carry prompts). */
const sdkLogger = (logger: Logger) => ({
  error: (msg: string) => logger.warn({ component: 'openai-sdk' }, msg),
  warn: (msg: string) => logger.warn({ component: 'openai-sdk' }, msg),
  info: (msg: string) => logger.debug({ component: 'openai-sdk' }, msg),
  debug: (msg: string) => logger.trace({ component: 'openai-sdk' }, msg)
})

export function createOpenAIModel (opts: OpenAIModelOptions): ChatModel {
  const { model, timeoutMs, maxRetries, logger } = opts
  const client = new OpenAI({
    apiKey: opts.apiKey,
    baseURL: opts.baseURL ?? 'https://api.openai.com/v1',
    timeout: timeoutMs,
    maxRetries,
    logger: sdkLogger(logger),
    logLevel: 'info',
    ...(opts.fetch ? { fetch: opts.fetch } : {})
  })
  const info: ModelInfo = { provider: providerLabel(opts.baseURL), name: model, offline: false }
  // OpenAI's own endpoint wants max_completion_tokens (reasoning models refuse max_tokens); compatible servers know max_tokens.
  const limit = opts.maxTokens === undefined ? {} : info.provider === 'openai' ? { max_completion_tokens: opts.maxTokens } : { max_tokens: opts.maxTokens }
  const common = { model, ...limit, ...(opts.temperature === undefined ? {} : { temperature: opts.temperature }) }
  const toParams = (messages: ChatMessage[]) => messages as ChatCompletionMessageParam[]

  /**
   * The SDK builds and sends the request (auth, retries, status → APIError, its header timeout);
   * the body is read push-style (sse-reader.ts): each network read is decoded in its own callback and its
   * text becomes one piece — handed to the request's `onText` sink when there is one (no promise per token),
   * else yielded as a `text` event — so a server that falls behind sends one delta for several tokens.
   */
  async function * stream ({ messages, tools, signal, onText, onReasoning }: StreamRequest): AsyncGenerator<ModelEvent> {
    if (signal.aborted) return
    const body: ChatCompletionCreateParamsStreaming = {
      ...common,
      messages: toParams(messages),
      ...(tools.length > 0 ? { tools } : {}),
      stream: true,
      stream_options: { include_usage: true }
    }
    // The SDK never removes the listener it puts on the signal it is given: give it one per request.
    const request = new AbortController()
    const forward = () => request.abort(signal.reason)
    signal.addEventListener('abort', forward, { once: true })
    // Up to the headers the SDK's own timeout (with its retries) applies; after them LLM_TIMEOUT_MS bounds
    // the wait for the first chunk and every gap between chunks.
    let timedOut = false
    let timer: NodeJS.Timeout | undefined
    let acc = emptyAccumulator()
    const outputBegan = () => acc.text.length > 0 || acc.toolCalls.length > 0 || acc.reasoningChars > 0
    try {
      let res: Response
      try {
        res = await client.chat.completions.create(body, { signal: request.signal }).asResponse()
      } catch (err) {
        if (signal.aborted || (err instanceof APIUserAbortError && !timedOut)) return
        const event = timedOut
          ? { type: 'error' as const, code: 'llm_unavailable' as const, retryable: true, message: `model endpoint sent no data within ${timeoutMs} ms` }
          : mapStartError(err, { timeoutMs, maxRetries })
        logger.warn({ code: event.code, status: err instanceof APIError ? err.status : undefined }, event.message)
        yield event
        return
      }
      if (!res.body) {
        const message = 'model endpoint answered without a body'
        logger.warn({ status: res.status }, message)
        yield { type: 'error', code: 'llm_unavailable', retryable: true, message }
        return
      }
      // A read only stamps the time; the timer, when it fires, re-arms for what is left of the window
      // (re-inserting a timer on every read cost more than the rest of the read).
      let lastRead = performance.now()
      const watch = () => {
        // After [DONE] the answer is complete; the reader bounds the wait for the body's end itself.
        if (reader.sawDone) return
        const left = lastRead + timeoutMs - performance.now()
        if (left > 0) { timer = setTimeout(watch, left); return }
        timedOut = true
        request.abort()
      }
      timer = setTimeout(watch, timeoutMs)
      // Text goes straight to the consumer's sink when it gave one; otherwise it is queued as events.
      const queue: ModelEvent[] = []
      let wake: (() => void) | undefined
      let sinkError: { err: unknown } | undefined
      const emit = (type: 'text' | 'reasoning', text: string) => {
        const sink = type === 'text' ? onText : onText ? onReasoning : undefined
        if (sink) {
          try { sink(text) } catch (err) { sinkError = { err }; throw err }
          return
        }
        if (type === 'reasoning' && onText) return // a sink consumer that does not want reasoning
        if (queue.push({ type, text }) > MAX_QUEUED) reader.pause()
        wake?.()
      }
      const reader = readSse(res.body, (chunks) => {
        let text = ''
        for (const chunk of chunks) {
          const step = accumulateChunk(acc, chunk as ChatCompletionChunk)
          acc = step.state
          // Reasoning is rare and comes before the answer: only then is the read split, so the order holds.
          if (step.reasoning && !signal.aborted) {
            if (text) { emit('text', text); text = '' }
            emit('reasoning', step.reasoning)
          }
          text += step.text
        }
        lastRead = performance.now()
        if (!text || signal.aborted) return
        emit('text', text)
      }, { graceAfterDoneMs: Math.min(1_000, timeoutMs) })
      let ended: { err?: unknown } | undefined
      reader.done.then(() => { ended = {} }, (err: unknown) => { ended = { err } }).finally(() => wake?.())
      while (true) {
        if (queue.length > 0) {
          const events = queue.splice(0)
          reader.resume()
          for (const event of events) yield event
          if (signal.aborted) return
          continue
        }
        if (ended) break
        await new Promise<void>((resolve) => { wake = resolve })
        wake = undefined
      }
      if (sinkError) throw sinkError.err
      if (ended?.err !== undefined) {
        if (signal.aborted) return
        if (!timedOut) {
          const event = mapStreamError(ended.err, outputBegan())
          logger.warn({ code: event.code, chunks: acc.chunks }, event.message)
          yield event
          return
        }
      }
      if (signal.aborted) return
      if (timedOut) {
        const began = outputBegan()
        const message = began || acc.chunks > 0
          ? `model stream stalled: no chunk for ${timeoutMs} ms`
          : `model endpoint sent no data within ${timeoutMs} ms`
        logger.warn({ chunks: acc.chunks }, message)
        yield { type: 'error', code: began ? 'llm_error' : 'llm_unavailable', retryable: true, message }
        return
      }
      if (acc.finishReason === null) {
        // The body ended cleanly but the answer did not: a proxy closed it, or the server stopped before [DONE].
        const message = 'model stream ended without a finish reason'
        yield { type: 'error', code: outputBegan() ? 'llm_error' : 'llm_unavailable', retryable: true, message }
        return
      }
      const calls = completedToolCalls(acc)
      for (const call of calls) yield { type: 'tool_call', call }
      yield { type: 'finish', reason: finishReason(acc.finishReason, calls.length > 0), ...(acc.usage ? { usage: acc.usage } : {}) }
    } finally {
      clearTimeout(timer)
      signal.removeEventListener('abort', forward)
      // Leaving early (cancel, a consumer that stops reading) must not leave the HTTP request open.
      if (!request.signal.aborted) request.abort()
    }
  }

  async function complete ({ messages, signal }: { messages: ChatMessage[]; signal?: AbortSignal }): Promise<string> {
    try {
      const res = await client.chat.completions.create({ ...common, messages: toParams(messages) }, signal ? { signal } : {})
      const text = res.choices?.[0]?.message?.content?.trim() ?? ''
      if (!text) throw new ModelError('llm_error', 'model returned an empty completion', true)
      return text
    } catch (err) {
      if (err instanceof ModelError) throw err
      if (err instanceof APIUserAbortError) throw new ModelError('llm_unavailable', 'request was cancelled', true, { cause: err })
      const event = mapStartError(err, { timeoutMs, maxRetries })
      throw new ModelError(event.code, event.message, event.retryable, { cause: err })
    }
  }

  return { info, stream, complete }
}
