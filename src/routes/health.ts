/** GET /health and GET /protocol.json (the WebSocket protocol as JSON Schema). */
import type { FastifyInstance } from 'fastify'
import { settlesWithin } from '../chat/settles.js'
import { protocolJsonSchema } from '../protocol.js'
import { healthSchema } from './schemas.js'

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  const { store, writer, model, hub, version, config, slots, serverSockets, addressSockets, userSockets } = app.services
  const protocol = JSON.stringify(protocolJsonSchema(), null, 2)

  // A probe is never rate limited (an orchestrator polling it must not be told 429); the store ping is bounded to 1 s.
  app.get('/health', { schema: healthSchema, config: { rateLimit: false } }, async () => {
    let pingError: string | undefined
    const ping = store.ping().catch((err: unknown) => { pingError = (err as Error).message })
    const answered = await settlesWithin(ping, 1_000)
    if (!answered) pingError = 'store ping timed out'
    const ok = pingError === undefined && writer.healthy
    return {
      status: ok ? 'ok' : 'degraded',
      version,
      uptimeS: Math.round(process.uptime()),
      model: model.info,
      store: { kind: store.kind, ok, pendingWrites: writer.pending, ...(ok ? {} : { error: pingError ?? writer.lastError ?? 'writes failing' }) },
      sessions: { live: hub.liveCount },
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

  app.get('/protocol.json', { schema: { summary: 'WebSocket protocol v1 as JSON Schema', tags: ['protocol'] } }, async (_request, reply) => {
    return reply.type('application/json').send(protocol)
  })
}
