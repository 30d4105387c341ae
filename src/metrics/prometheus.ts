/** The Prometheus meter (prom-client): every metric of DESIGN §12 on its own registry. Loaded only with METRICS=on. */
import { settlesWithin } from '../settles.js'
import { collectProcessMetrics, Counter, Gauge, Histogram, Registry } from './prom-parts.js'
import { ErrorCode, FinishReason } from '../protocol.js'
import type { Meter, ModelOutcome, ResumeSource, ToolCallOutcome } from './meter.js'

/** What the gauges read at scrape time (nothing is counted on the way for them). */
export interface GaugeSources {
  socketsOpen (): number
  sessionsLive (): number
  turnsRunning (): number
  storePendingEvents (): number
  /** The summary queue by status, across every worker (a store read at scrape time). */
  summaryJobs (): Promise<Record<'pending' | 'running' | 'failed', number>>
}

const MODEL_OUTCOMES: ModelOutcome[] = ['ok', 'error', 'unavailable', 'cancelled']
const TOOL_OUTCOMES: ToolCallOutcome[] = ['ok', 'error', 'invalid', 'timeout', 'cancelled']
const RESUME_SOURCES: ResumeSource[] = ['memory', 'store', 'reset']
/** The close codes the protocol and ws use; anything else is "other". */
const CLOSE_CODES = new Set([1000, 1001, 1002, 1005, 1006, 1007, 1008, 1009, 1011, 1012, 1013, 4400, 4401, 4403, 4408])
const ERROR_CODES = new Set<string>(ErrorCode.options)

/** The metric names and help texts (docs/operations.md lists the same). */
export const METRIC_HELP = {
  rtb_sockets_open: 'WebSocket connections open now',
  rtb_sessions_live: 'Sessions held in memory now (with a socket, or within their disconnect grace)',
  rtb_turns_running: 'Turns running now',
  rtb_turns_total: 'Turns closed, by finish reason',
  rtb_deltas_sent_total: 'Delta frames streamed (one per index of a turn, whatever the number of sockets)',
  rtb_model_requests_total: 'Model requests (steps of a turn), by outcome',
  rtb_tool_calls_total: 'Tool calls, by tool and outcome',
  rtb_ws_closes_total: 'WebSocket closes, by the close code the client was sent',
  rtb_errors_total: 'Error frames sent, by protocol error code',
  rtb_resumes_total: 'Sockets that resumed with ?after=, by where the missed events were read',
  rtb_time_to_first_token_seconds: 'From the start of a turn to its first text delta',
  rtb_tool_duration_seconds: 'Tool call duration, by tool',
  rtb_store_write_duration_seconds: 'One event-writer round trip to the store (a batch)',
  rtb_store_pending_events: 'Events accepted but not stored yet',
  rtb_summary_jobs: 'Summary jobs by status across all workers: pending (waiting), running (claimed under a live lease), failed',
  rtb_added_latency_seconds: 'From a model chunk being decoded to its delta frame being written to the sockets (1 delta in 64 sampled)',
  gen_ai_client_token_usage: 'Tokens used per model request, by token type (OpenTelemetry GenAI)',
  gen_ai_client_operation_duration_seconds: 'Model request duration (OpenTelemetry GenAI)'
} as const

const SUMMARY_READ_MS = 1_000

export interface PrometheusMeter { meter: Meter; registry: Registry }

export function createPrometheusMeter ({ toolNames, sources }: { toolNames: readonly string[]; sources: GaugeSources }): PrometheusMeter {
  const registry = new Registry()
  const registers = [registry]
  collectProcessMetrics(registry)
  const gauge = (name: keyof typeof METRIC_HELP, read: () => number) =>
    new Gauge({ name, help: METRIC_HELP[name], registers, collect () { this.set(read()) } })
  gauge('rtb_sockets_open', sources.socketsOpen)
  gauge('rtb_sessions_live', sources.sessionsLive)
  gauge('rtb_turns_running', sources.turnsRunning)
  gauge('rtb_store_pending_events', sources.storePendingEvents)
  new Gauge({
    name: 'rtb_summary_jobs',
    help: METRIC_HELP.rtb_summary_jobs,
    labelNames: ['status'],
    registers,
    // A store read per scrape, bounded: a slow or failing store leaves the last values rather than failing the scrape.
    async collect () {
      const read = sources.summaryJobs()
      const counts = await settlesWithin(read, SUMMARY_READ_MS) ? await read.catch(() => undefined) : undefined
      if (counts) for (const [status, n] of Object.entries(counts)) this.set({ status }, n)
    }
  })

  const turns = new Counter({ name: 'rtb_turns_total', help: METRIC_HELP.rtb_turns_total, labelNames: ['finish_reason'], registers })
  const deltas = new Counter({ name: 'rtb_deltas_sent_total', help: METRIC_HELP.rtb_deltas_sent_total, registers })
  const models = new Counter({ name: 'rtb_model_requests_total', help: METRIC_HELP.rtb_model_requests_total, labelNames: ['outcome'], registers })
  const tools = new Counter({ name: 'rtb_tool_calls_total', help: METRIC_HELP.rtb_tool_calls_total, labelNames: ['tool', 'outcome'], registers })
  const closes = new Counter({ name: 'rtb_ws_closes_total', help: METRIC_HELP.rtb_ws_closes_total, labelNames: ['code'], registers })
  const errors = new Counter({ name: 'rtb_errors_total', help: METRIC_HELP.rtb_errors_total, labelNames: ['code'], registers })
  const resumes = new Counter({ name: 'rtb_resumes_total', help: METRIC_HELP.rtb_resumes_total, labelNames: ['source'], registers })
  const ttft = new Histogram({
    name: 'rtb_time_to_first_token_seconds', help: METRIC_HELP.rtb_time_to_first_token_seconds, registers,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
  })
  const toolTime = new Histogram({
    name: 'rtb_tool_duration_seconds', help: METRIC_HELP.rtb_tool_duration_seconds, labelNames: ['tool'], registers,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
  })
  const storeWrite = new Histogram({
    name: 'rtb_store_write_duration_seconds', help: METRIC_HELP.rtb_store_write_duration_seconds, registers,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
  })
  const added = new Histogram({
    name: 'rtb_added_latency_seconds', help: METRIC_HELP.rtb_added_latency_seconds, registers,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25]
  })
  // The GenAI semantic conventions' histograms, with their recommended buckets.
  const tokenUsage = new Histogram({
    name: 'gen_ai_client_token_usage', help: METRIC_HELP.gen_ai_client_token_usage, labelNames: ['gen_ai_operation_name', 'gen_ai_token_type'], registers,
    buckets: [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
  })
  const opDuration = new Histogram({
    name: 'gen_ai_client_operation_duration_seconds', help: METRIC_HELP.gen_ai_client_operation_duration_seconds, labelNames: ['gen_ai_operation_name'], registers,
    buckets: [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
  })

  // Every label value of the closed sets exists from the start, at 0: rates and dashboards need no "absent" case.
  const knownTools = new Set(toolNames)
  const toolLabel = (name: string): string => knownTools.has(name) ? name : 'other'
  for (const r of FinishReason.options) turns.inc({ finish_reason: r }, 0)
  for (const o of MODEL_OUTCOMES) models.inc({ outcome: o }, 0)
  for (const t of [...knownTools, 'other']) for (const o of TOOL_OUTCOMES) tools.inc({ tool: t, outcome: o }, 0)
  for (const s of RESUME_SOURCES) resumes.inc({ source: s }, 0)
  deltas.inc(0)

  const meter: Meter = {
    enabled: true,
    turnEnded (finishReason, n) {
      turns.inc({ finish_reason: finishReason })
      if (n > 0) deltas.inc(n)
    },
    firstToken (seconds) { ttft.observe(seconds) },
    modelCall ({ outcome, seconds, usage }) {
      models.inc({ outcome })
      opDuration.observe({ gen_ai_operation_name: 'chat' }, seconds)
      if (usage) {
        tokenUsage.observe({ gen_ai_operation_name: 'chat', gen_ai_token_type: 'input' }, usage.promptTokens)
        tokenUsage.observe({ gen_ai_operation_name: 'chat', gen_ai_token_type: 'output' }, usage.completionTokens)
      }
    },
    toolCall ({ tool, outcome, seconds }) {
      const label = toolLabel(tool)
      tools.inc({ tool: label, outcome })
      toolTime.observe({ tool: label }, seconds)
    },
    error (code) { errors.inc({ code: ERROR_CODES.has(code) ? code : 'other' }) },
    resume (source) { resumes.inc({ source }) },
    wsClosed (code) { closes.inc({ code: CLOSE_CODES.has(code) ? String(code) : 'other' }) },
    storeWrite (seconds) { storeWrite.observe(seconds) },
    addedLatency (seconds) { added.observe(seconds) }
  }
  return { meter, registry }
}
