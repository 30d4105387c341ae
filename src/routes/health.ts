/** GET /health and GET /protocol.json (the WebSocket protocol as JSON Schema). */
import type { FastifyInstance } from 'fastify'
import { settlesWithin } from '../chat/settles.js'
import { protocolJsonSchema } from '../protocol.js'
import { healthSchema } from './schemas.js'

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  const { store, writer, model, hub, version } = app.services
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
      sessions: { live: hub.liveCount }
    }
  })

  app.get('/protocol.json', { schema: { summary: 'WebSocket protocol v1 as JSON Schema', tags: ['protocol'] } }, async (_request, reply) => {
    return reply.type('application/json').send(protocol)
  })
}
