/** A turn's metrics and spans, as tool-loop callbacks: nothing at all when the meter is off and no tracer is set. */
import type { Meter } from '../metrics/meter.js'
import { toolOutcomeOf } from '../metrics/meter.js'
import type { ModelCallEnd, TurnCallbacks } from '../llm/tool-loop.js'
import type { FinishReason, Usage } from '../protocol.js'
import type { SpanHandle, Tracer } from '../tracing/tracer.js'
import type { Turn } from './turn.js'

export interface TurnTelemetry {
  /** Wraps the turn's callbacks (in place): first-token time, model calls, tool calls. */
  instrument (callbacks: TurnCallbacks): void
  end (finishReason: FinishReason, usage?: Usage): void
}

export function turnTelemetry ({ meter, tracer, sessionId, turn, model, started }: {
  meter: Meter; tracer?: Tracer; sessionId: string; turn: Turn; model: string; started: number
}): TurnTelemetry | undefined {
  if (!meter.enabled && !tracer) return undefined
  const trace = tracer?.startTurn({ sessionId, turnId: turn.id, model })
  const tools = new Map<string, SpanHandle>()
  return {
    instrument (callbacks) {
      if (meter.enabled) {
        // The first text replaces this wrapper with the plain callback: the token path pays one call, once.
        const steady = callbacks.onText
        callbacks.onText = (text) => {
          callbacks.onText = steady
          meter.firstToken((performance.now() - started) / 1000)
          steady(text)
        }
      }
      callbacks.onModelCall = () => {
        const t0 = performance.now()
        const span = trace?.modelCall()
        return ({ outcome, finishReason, usage }: ModelCallEnd) => {
          const seconds = (performance.now() - t0) / 1000
          meter.modelCall({ outcome, seconds, ...(usage ? { usage } : {}) })
          span?.end({
            'gen_ai.usage.input_tokens': usage?.promptTokens,
            'gen_ai.usage.output_tokens': usage?.completionTokens,
            'gen_ai.response.finish_reasons': finishReason ? [finishReason] : outcome === 'cancelled' ? ['cancelled'] : undefined
          }, outcome === 'error' || outcome === 'unavailable' ? `llm_${outcome}` : undefined)
        }
      }
      const { onToolCall, onToolResult } = callbacks
      callbacks.onToolCall = (call, args) => {
        if (trace) tools.set(call.id, trace.toolCall(call.name, call.id))
        onToolCall(call, args)
      }
      callbacks.onToolResult = (call, outcome) => {
        const label = toolOutcomeOf(outcome)
        meter.toolCall({ tool: call.name, outcome: label, seconds: outcome.durationMs / 1000 })
        tools.get(call.id)?.end({}, label === 'ok' ? undefined : label)
        tools.delete(call.id)
        onToolResult(call, outcome)
      }
    },
    end (finishReason, usage) {
      meter.turnEnded(finishReason, turn.deltas.length)
      trace?.end(finishReason, { 'gen_ai.usage.input_tokens': usage?.promptTokens, 'gen_ai.usage.output_tokens': usage?.completionTokens })
    }
  }
}
