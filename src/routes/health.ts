/** GET /health, /health/live, /health/ready and GET /protocol.json (the WebSocket protocol as JSON Schema). */
import type { FastifyInstance } from 'fastify'
import { settlesWithin } from '../settles.js'
import { createOperatorCheck } from '../ops/operator.js'
import { protocolJsonSchema } from '../protocol.js'
import { healthSchema, liveSchema, readySchema } from './schemas.js'

const withoutErrors = <T extends { error?: string }>(servers: Record<string, T>): Record<string, Omit<T, 'error'>> =>
  Object.fromEntries(Object.entries(servers).map(([name, { error: _hidden, ...rest }]) => [name, rest]))

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  const { store, writer, model, hub, version, readiness, auth, config, slots, serverSockets, addressSockets, userSockets, mcp, cluster } = app.services
  const protocol = JSON.stringify(protocolJsonSchema(), null, 2)
  // Admins may read /health's details too; /metrics takes only loopback or METRICS_TOKEN (routes/metrics.ts).
  const operatorAccess = createOperatorCheck({ metricsToken: config.METRICS_TOKEN, auth, allowAdmins: true })

  // A probe is never rate limited (an orchestrator polling it must not be told 429); the store ping is bounded to 1 s.
  app.get('/health', { schema: healthSchema, config: { rateLimit: false } }, async (request) => {
    let pingError: string | undefined
    const ping = store.ping().catch((err: unknown) => { pingError = (err as Error).message })
    const answered = await settlesWithin(ping, 1_000)
    if (!answered) pingError = 'store ping timed out'
    const ok = pingError === undefined && writer.healthy
    const busUp = cluster?.up ?? true
    // The store's error text can name the database host, user or schema: only operators read it.
    const operator = (await operatorAccess(request)) === 'operator'
    const detail = ok ? undefined : operator ? pingError ?? writer.lastError ?? 'writes failing' : undefined
    return {
      status: ok && busUp ? 'ok' : 'degraded',
      version,
      uptimeS: Math.round(process.uptime()),
      model: model.info,
      store: { kind: store.kind, ok, pendingWrites: writer.pending, ...(detail === undefined ? {} : { error: detail }) },
      sessions: { live: hub.liveCount },
      ...(cluster ? { cluster: { instanceId: cluster.instanceId, bus: busUp ? 'up' as const : 'down' as const, links: cluster.links } } : {}),
      // An MCP server's error can name its host or command: operators only, like the store's.
      ...(mcp ? { mcp: operator ? mcp.status() : withoutErrors(mcp.status()) } : {}),
      limits: limitsInUse()
    }
  })

  /** Every limit in force and, where there is a count, how close the server is to it. */
  const limitsInUse = () => {
    const turns = slots.stats()
    return {
      sockets: { used: serverSockets.held(''), max: config.MAX_SOCKETS },
      liveSessions: { used: hub.liveCount, max: config.MAX_LIVE_SESSIONS },
      turns: { running: turns.running, max: turns.limit, queued: turns.queued, maxQueued: turns.maxQueued },
      summaries: { running: turns.lowRunning, max: config.SUMMARY_CONCURRENCY },
      perAddress: {
        sockets: { used: addressSockets.busiest(), max: config.MAX_SOCKETS_PER_IP },
        newSessionsPerMin: config.MAX_NEW_SESSIONS_PER_IP_PER_MIN,
        messagesPerMin: config.RATE_MESSAGES_PER_MIN_PER_IP
      },
      perUser: { sockets: { used: userSockets.busiest(), max: config.MAX_SOCKETS_PER_USER }, messagesPerMin: config.RATE_MESSAGES_PER_MIN_PER_USER },
      perSession: { sockets: config.MAX_SOCKETS_PER_SESSION, messagesPerMin: config.RATE_MESSAGES_PER_MIN },
      perConnection: { framesPerMin: config.RATE_FRAMES_PER_MIN },
      http: { requestsPerMinPerAddress: config.RATE_HTTP_PER_MIN }
    }
  }

  // Probes: no store round trip, no rate limit (a kubelet asks every few seconds from one address).
  app.get('/health/live', { schema: liveSchema, config: { rateLimit: false } }, async () => ({ status: 'live' as const }))
  app.get('/health/ready', { schema: readySchema, config: { rateLimit: false } }, async (_request, reply) => {
    if (readiness.ready) return { status: 'ready' as const }
    return reply.code(503).send({ status: readiness.draining ? 'draining' as const : 'starting' as const })
  })

  app.get('/protocol.json', { schema: { summary: 'WebSocket protocol v1 as JSON Schema', tags: ['protocol'] } }, async (_request, reply) => {
    return reply.type('application/json').send(protocol)
  })
}
