/** Builds the services (store, writer, model, tools, hub, summary worker), decorates them and owns their teardown. */
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { createAuthenticator } from '../auth/authenticator.js'
import type { Authenticator } from '../auth/types.js'
import { createRateLimit } from '../chat/limits.js'
import { SessionHub } from '../chat/hub.js'
import type { Config } from '../config.js'
import { createSummaryWorker, type SummaryWorker } from '../jobs/summary-worker.js'
import { createModel } from '../llm/create-model.js'
import { NO_METER, type Meter } from '../metrics/meter.js'
import { createReadiness, type Readiness } from '../ops/readiness.js'
import type { Tracer } from '../tracing/tracer.js'
import { createHeldCounter, type HeldCounter } from '../quota/counter.js'
import { createTokenBudget, type TokenBudget } from '../quota/token-budget.js'
import { createTurnSlots, type TurnSlots } from '../quota/turn-slots.js'
import { summarizeSession } from '../llm/summarize.js'
import type { ChatModel } from '../llm/types.js'
import { EventWriter } from '../store/event-writer.js'
import { createStore } from '../store/index.js'
import type { SessionRepository } from '../store/types.js'
import { createDefaultTools } from '../tools/index.js'
import { createToolRegistry, parseApprovalList, type ToolRegistry } from '../tools/registry.js'
import type { ToolDefinition } from '../tools/types.js'
import type { McpTools } from '../tools/mcp/index.js'
import type { ClusterBus } from '../cluster/bus.js'
import type { ClusterNode } from '../cluster/node.js'

export interface Services {
  config: Config
  store: SessionRepository
  writer: EventWriter
  model: ChatModel
  tools: ToolRegistry
  hub: SessionHub
  worker: SummaryWorker
  /** DESIGN §10: verifies credentials; `enabled` false when no auth is configured. */
  auth: Authenticator
  /** Sockets each principal holds across sessions (MAX_SOCKETS_PER_USER). */
  userSockets: HeldCounter
  /** Sockets each client address holds (MAX_SOCKETS_PER_IP). */
  addressSockets: HeldCounter
  /** Sockets of the whole server, under the one key '' (MAX_SOCKETS). */
  serverSockets: HeldCounter
  /** Model slots shared by turns and summaries (MAX_CONCURRENT_TURNS, MAX_QUEUED_TURNS, SUMMARY_CONCURRENCY). */
  slots: TurnSlots
  /** Tokens per principal per day (and USER_DAILY_TOKEN_BUDGET); undefined with auth off. */
  budget?: TokenBudget
  /** GET /health/ready: start-up done, not draining. */
  readiness: Readiness
  /** Counts (DESIGN §12); NO_METER with METRICS=off. */
  meter: Meter
  /** What GET /metrics serves; absent with METRICS=off. */
  metrics?: MetricsExposition
  /** Spans over OTLP/HTTP; absent unless OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracer?: Tracer
  /** Cluster mode (REDIS_URL, DESIGN §11): live traffic between instances; absent without it. */
  cluster?: ClusterNode
  /** The MCP servers of MCP_CONFIG (DESIGN §13); absent when it is unset. */
  mcp?: McpTools
  version: string
}

/** What tests (or an embedding app) may supply instead of building it from config. */
export interface ServiceDeps {
  store?: SessionRepository
  model?: ChatModel
  /** Replaces the default tools (get_system_metrics, fetch_user_profile). */
  tools?: ToolDefinition[]
}

/** The Prometheus text of every metric, without prom-client's types leaking out of src/metrics. */
export interface MetricsExposition {
  contentType: string
  render (): Promise<string>
}

declare module 'fastify' {
  interface FastifyInstance { services: Services }
}

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

async function services (app: FastifyInstance, { config, deps = {} }: { config: Config; deps?: ServiceDeps }): Promise<void> {
  const log = app.log
  const store = deps.store ?? createStore(config, log.child({ component: 'store' }))
  await store.init()
  const model = deps.model ?? createModel(config, log.child({ component: 'llm' }))
  // Loaded only when configured: with METRICS=off nothing of prom-client, without an endpoint nothing of OpenTelemetry.
  const tracer = config.OTEL_EXPORTER_OTLP_ENDPOINT === undefined
    ? undefined
    : (await import('../tracing/otel.js')).createOtelTracer({ endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: config.OTEL_SERVICE_NAME, version, logger: log.child({ component: 'tracing' }) })
  let meter: Meter = NO_METER
  let metrics: MetricsExposition | undefined
  let hub: SessionHub | undefined
  let worker: SummaryWorker | undefined
  const writer = new EventWriter({
    store,
    logger: log.child({ component: 'event-writer' }),
    ...(config.METRICS === 'on' || tracer ? { observeBatch: observeStoreBatch(() => meter, tracer) } : {}),
    // Another instance owns the session now (DESIGN §11): its live copy here steps down at once.
    onRefused: ({ sessionId, reason }) => {
      if (reason === 'fenced') hub?.fenced(sessionId)
      else meter.error('store_conflict')
    },
    batchSize: config.WRITER_BATCH_SIZE,
    flushMs: config.WRITER_FLUSH_MS,
    maxPending: config.WRITER_MAX_PENDING
  })
  const slots = createTurnSlots({ limit: config.MAX_CONCURRENT_TURNS, maxQueued: config.MAX_QUEUED_TURNS, lowLimit: config.SUMMARY_CONCURRENCY })
  worker = createSummaryWorker({
    store,
    // A summary calls the model only in a slot no waiting turn wants.
    summarize: async ({ events, signal }) => {
      const release = await slots.acquireLow(signal)
      try { return await summarizeSession({ model, events, signal }) } finally { release() }
    },
    batch: config.SUMMARY_CONCURRENCY,
    logger: log.child({ component: 'summary-worker' }),
    pollMs: config.SUMMARY_POLL_MS,
    leaseMs: config.SUMMARY_LEASE_MS,
    maxAttempts: config.SUMMARY_MAX_ATTEMPTS
  })
  const auth = createAuthenticator(config)
  // With auth on, every owner's tokens are counted (GET /api/me); the budget, when set, is enforced on top.
  const budget = auth.enabled
    ? createTokenBudget({ store, limit: config.USER_DAILY_TOKEN_BUDGET ?? null, logger: log.child({ component: 'budget' }) })
    : undefined
  const toolDefs = deps.tools ?? createDefaultTools({
    liveSessions: () => hub?.liveCount ?? 0,
    getProfile: (userId) => store.getProfile(userId)
  })
  // Loaded only when configured: without MCP_CONFIG nothing of the MCP SDK is imported. A bad file stops the start.
  let mcp: McpTools | undefined
  if (config.MCP_CONFIG !== undefined) {
    const [{ loadMcpConfig }, { createMcpTools }] = await Promise.all([import('../tools/mcp/config.js'), import('../tools/mcp/index.js')])
    mcp = createMcpTools({ config: loadMcpConfig(config.MCP_CONFIG), logger: log.child({ component: 'mcp' }), reconnectMs: config.MCP_RECONNECT_MS })
  }
  const tools = createToolRegistry({
    tools: toolDefs,
    ...(mcp ? { sources: [mcp.source] } : {}),
    timeoutMs: config.TOOL_TIMEOUT_MS,
    requireApproval: parseApprovalList(config.TOOLS_REQUIRE_APPROVAL),
    logger: log.child({ component: 'tools' })
  })
  if (config.METRICS === 'on') {
    const { createPrometheusMeter } = await import('../metrics/prometheus.js')
    const prometheus = createPrometheusMeter({
      toolNames: tools.names(),
      sources: {
        socketsOpen: () => app.websocketServer?.clients.size ?? 0,
        sessionsLive: () => hub?.liveCount ?? 0,
        turnsRunning: () => hub?.runningTurns ?? 0,
        storePendingEvents: () => writer.pending,
        summaryJobs: () => store.summaryJobCounts()
      }
    })
    meter = prometheus.meter
    metrics = { contentType: prometheus.registry.contentType, render: () => prometheus.registry.metrics() }
  }
  // Loaded only in cluster mode: without REDIS_URL nothing of ioredis is imported and the token path is unchanged.
  let bus: ClusterBus | undefined
  let cluster: ClusterNode | undefined
  if (config.REDIS_URL !== undefined) {
    const [{ createRedisBus }, { createClusterNode }] = await Promise.all([import('../cluster/bus.js'), import('../cluster/node.js')])
    const clusterLog = log.child({ component: 'cluster', instance: config.INSTANCE_ID })
    const heartbeatMs = clusterHeartbeatMs(config.SESSION_LEASE_MS)
    bus = await createRedisBus({ url: config.REDIS_URL, instanceId: config.INSTANCE_ID, logger: clusterLog, claimMs: 3 * heartbeatMs })
    cluster = createClusterNode({ bus, instanceId: config.INSTANCE_ID, heartbeatMs, logger: clusterLog, meter })
  }
  hub = new SessionHub({
    store,
    writer,
    model,
    tools,
    config,
    logger: log.child({ component: 'chat' }),
    takeMessageToken: createRateLimit({ perMinute: config.RATE_MESSAGES_PER_MIN }),
    takeUserMessageToken: createRateLimit({ perMinute: config.RATE_MESSAGES_PER_MIN_PER_USER }),
    ...(budget ? { budget } : {}),
    takeAddressMessageToken: createRateLimit({ perMinute: config.RATE_MESSAGES_PER_MIN_PER_IP }),
    takeNewSessionToken: createRateLimit({ perMinute: config.MAX_NEW_SESSIONS_PER_IP_PER_MIN }),
    slots,
    meter,
    ...(tracer ? { tracer } : {}),
    ...(cluster ? { remote: cluster } : {}),
    onSessionEnded: () => worker?.kick()
  })
  cluster?.serve(hub)
  const userSockets = createHeldCounter(config.MAX_SOCKETS_PER_USER)
  const addressSockets = createHeldCounter(config.MAX_SOCKETS_PER_IP)
  const serverSockets = createHeldCounter(config.MAX_SOCKETS)
  const readiness = createReadiness()
  app.decorate('services', {
    config, store, writer, model, tools, hub, worker, auth, userSockets, addressSockets, serverSockets, slots, budget, readiness, meter, metrics, tracer, cluster, mcp, version
  })

  app.addHook('onReady', async () => {
    worker.start()
    // In the background: a long list of sessions left active by a crash must not delay listening.
    hub.recover().then(
      (recovered) => { if (recovered > 0) log.info({ sessions: recovered }, 'recovering active sessions left by the previous run') },
      (err: unknown) => log.warn({ err }, 'could not list sessions to recover')
    ).finally(() => {
      readiness.started()
      hub.startSweeping()
    })
  })
  // Any close drains (server.ts drains earlier, at the signal): a probe never sees a closing instance as ready.
  app.addHook('preClose', async () => { readiness.drain() })
  // Written out in the order teardown must happen (sockets and turns are closed in the websocket preClose).
  app.addHook('onClose', async () => {
    // Begun by the websocket plugin's preClose (running turns go on for DRAIN_TIMEOUT_MS): the same promise here.
    await hub.shutdown(config.DRAIN_TIMEOUT_MS)
    cluster?.stop()
    await bus?.close()
    const flushed = await writer.close(config.SHUTDOWN_TIMEOUT_MS)
    if (!flushed) log.error({ pending: writer.pending }, 'shutdown: events still pending after the timeout')
    // Only once every numbered event is stored may the unused rest of a reservation (and the lease) be given back.
    if (flushed) await hub.releaseSeqs()
    hub.stopRenewing()
    await worker.stop()
    await mcp?.close()
    if (!deps.store) await store.close()
    await tracer?.shutdown()
  })
}

export default fp(services, { name: 'services', fastify: '5.x' })

/** The writer's round trips as a store-write duration and a span (the meter is read late: it is built after the writer). */
function observeStoreBatch (meter: () => Meter, tracer: Tracer | undefined): (events: number) => (error?: unknown) => void {
  return (events) => {
    const m = meter()
    if (!m.enabled && !tracer) return nothingToEnd
    const t0 = performance.now()
    const span = tracer?.storeBatch(events)
    return (error) => {
      m.storeWrite((performance.now() - t0) / 1000)
      span?.end({}, error === undefined ? undefined : 'store_error')
    }
  }
}

const nothingToEnd = (): void => {}

/** Heartbeats between linked instances: a fifth of the lease, within 0.1–1 s (a silent instance is dropped after three). */
function clusterHeartbeatMs (leaseMs: number): number {
  return Math.min(1_000, Math.max(100, Math.floor(leaseMs / 5)))
}
