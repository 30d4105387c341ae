/** GET /metrics: Prometheus text, to loopback clients or with `Authorization: Bearer $METRICS_TOKEN`. Registered only with METRICS=on. */
import type { FastifyInstance } from 'fastify'
import { createOperatorCheck } from '../ops/operator.js'

export default async function metricsRoutes (app: FastifyInstance): Promise<void> {
  const { metrics, config, auth } = app.services
  if (!metrics) return
  const operatorAccess = createOperatorCheck({ metricsToken: config.METRICS_TOKEN, auth, allowAdmins: false })

  // Not under the REST limit: other traffic from the scraper's address must not lock the scraper out.
  app.get('/metrics', {
    config: { rateLimit: false },
    schema: { summary: 'Prometheus metrics (loopback clients, or Bearer METRICS_TOKEN)', tags: ['health'], security: [{ bearerAuth: [] }] }
  }, async (request, reply) => {
    const access = await operatorAccess(request)
    if (access === 'none') {
      return reply.code(401).header('www-authenticate', 'Bearer realm="metrics"')
        .send({ error: { code: 'UNAUTHENTICATED', message: 'metrics need Authorization: Bearer <METRICS_TOKEN>' } })
    }
    if (access === 'wrong') return reply.code(403).send({ error: { code: 'FORBIDDEN', message: 'this credential may not read metrics' } })
    return reply.type(metrics.contentType).send(await metrics.render())
  })
}
