/** The OpenTelemetry tracer: spans over OTLP/HTTP (JSON). Imported dynamically, only when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
import { context, diag, DiagLogLevel, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { Logger } from '../logger.js'
import { settlesWithin } from '../settles.js'
import type { SpanAttributes, SpanHandle, Tracer } from './tracer.js'

/** Span names carry the tool's name as the model sent it: bounded, so a hostile name cannot bloat the backend. */
const MAX_NAME = 64

const clean = (attributes: SpanAttributes | undefined): Attributes => {
  const out: Attributes = {}
  for (const [k, v] of Object.entries(attributes ?? {})) if (v !== undefined) out[k] = v
  return out
}

/** How long shutdown waits for the collector to take the last spans. */
const SHUTDOWN_EXPORT_MS = 1_000

const handle = (span: Span): SpanHandle => ({
  end (attributes, error) {
    span.setAttributes(clean(attributes))
    if (error !== undefined) {
      span.setAttribute('error.type', error)
      span.setStatus({ code: SpanStatusCode.ERROR, message: error })
    }
    span.end()
  }
})

export function createOtelTracer ({ endpoint, serviceName, version, logger }: { endpoint: string; serviceName: string; version: string; logger: Logger }): Tracer {
  // The SDK reports export failures through diag: into our log, at warn (a collector that is down must not flood it).
  diag.setLogger({
    error: (msg, ...args) => logger.warn({ args }, `otel: ${msg}`),
    warn: (msg, ...args) => logger.warn({ args }, `otel: ${msg}`),
    info: () => {},
    debug: () => {},
    verbose: () => {}
  }, DiagLogLevel.WARN)
  // Each export is bounded too (the default is 10 s): a hanging collector costs at most this per batch.
  const exporter = new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, '')}/v1/traces`, timeoutMillis: 3_000 })
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.version': version }),
    spanProcessors: [new BatchSpanProcessor(exporter)]
  })
  // Not registered globally: the app's spans go through this provider only (tests build several apps in one process).
  const tracer = provider.getTracer('realtime-ai-backend', version)
  logger.info({ endpoint }, 'tracing: exporting spans over OTLP/HTTP')

  return {
    startTurn ({ sessionId, turnId, model }) {
      const turnSpan = tracer.startSpan('turn', { kind: SpanKind.INTERNAL, attributes: { 'rtb.session.id': sessionId, 'rtb.turn.id': turnId, 'gen_ai.request.model': model } })
      const parent = trace.setSpan(context.active(), turnSpan)
      return {
        modelCall () {
          return handle(tracer.startSpan(`chat ${model}`, {
            kind: SpanKind.CLIENT,
            attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': model }
          }, parent))
        },
        toolCall (name, callId) {
          const tool = name.slice(0, MAX_NAME)
          return handle(tracer.startSpan(`execute_tool ${tool}`, {
            kind: SpanKind.INTERNAL,
            attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': tool, 'gen_ai.tool.call.id': callId }
          }, parent))
        },
        end (finishReason, attributes) {
          turnSpan.setAttributes(clean({ 'rtb.finish_reason': finishReason, ...attributes }))
          if (finishReason === 'error') turnSpan.setStatus({ code: SpanStatusCode.ERROR, message: 'turn ended with an error' })
          turnSpan.end()
        }
      }
    },
    storeBatch (events) {
      return handle(tracer.startSpan('store append_events', { kind: SpanKind.CLIENT, attributes: { 'db.operation.name': 'append_events', 'db.operation.batch.size': events } }))
    },
    async shutdown () {
      // Bounded: a collector that is down or hangs must not hold the process's exit (it took 8-10 s, past a short
      // SHUTDOWN_TIMEOUT_MS, and the process exited 1 instead of 0). Spans not exported by then are dropped.
      const done = provider.shutdown().catch((err: unknown) => { logger.warn({ err }, 'tracing: could not export the last spans') })
      if (!(await settlesWithin(done, SHUTDOWN_EXPORT_MS))) logger.warn({ waitedMs: SHUTDOWN_EXPORT_MS }, 'tracing: the collector did not take the last spans in time; dropped')
    }
  }
}
