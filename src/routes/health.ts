/** GET /health, /health/live, /health/ready and GET /protocol.json (the WebSocket protocol as JSON Schema). */
import type { FastifyInstance } from 'fastify'
import { settlesWithin } from '../chat/settles.js'
import { createOperatorCheck } from '../ops/operator.js'
import { protocolJsonSchema } from '../protocol.js'
import { healthSchema, liveSchema, readySchema } from './schemas.js'

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  const { store, writer, model, hub, version, readiness, auth, config } = app.services
  const protocol = JSON.stringify(protocolJsonSchema(), null, 2)
  // Admins may read /health's details too; /metrics takes only loopback or METRICS_TOKEN (routes/metrics.ts).
  const operatorAccess = createOperatorCheck({ metricsToken: config.METRICS_TOKEN, auth, allowAdmins: true })

  // Each call pings the store: limited like the API so it cannot be used to hammer the database.
  app.get('/health', { schema: healthSchema, config: { rateLimit: { max: config.RATE_HTTP_PER_MIN, timeWindow: '1 minute' } } }, async (request) => {
    let pingError: string | undefined
    const ping = store.ping().catch((err: unknown) => { pingError = (err as Error).message })
    const answered = await settlesWithin(ping, 1_000)
    if (!answered) pingError = 'store ping timed out'
    const ok = pingError === undefined && writer.healthy
    // The store's error text can name the database host, user or schema: only operators read it.
    const detail = ok ? undefined : (await operatorAccess(request)) === 'operator' ? pingError ?? writer.lastError ?? 'writes failing' : undefined
    return {
      status: ok ? 'ok' : 'degraded',
      version,
      uptimeS: Math.round(process.uptime()),
      model: model.info,
      store: { kind: store.kind, ok, pendingWrites: writer.pending, ...(detail === undefined ? {} : { error: detail }) },
      sessions: { live: hub.liveCount }
    }
  })

  // Probes: no store round trip, no rate limit (a kubelet asks every few seconds from one address).
  app.get('/health/live', { schema: liveSchema }, async () => ({ status: 'live' as const }))
  app.get('/health/ready', { schema: readySchema }, async (_request, reply) => {
    if (readiness.ready) return { status: 'ready' as const }
    return reply.code(503).send({ status: readiness.draining ? 'draining' as const : 'starting' as const })
  })

  app.get('/protocol.json', { schema: { summary: 'WebSocket protocol v1 as JSON Schema', tags: ['protocol'] } }, async (_request, reply) => {
    return reply.type('application/json').send(protocol)
  })
}
