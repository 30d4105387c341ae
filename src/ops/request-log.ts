/** REST request ids (`x-request-id` honoured when well-formed, else a UUID) and one access line per request. */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance } from 'fastify'

/** What a caller's id may look like to be reused: short, and nothing a log reader could mistake for structure. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Fastify's `genReqId`: the caller's `x-request-id` when well-formed, else a fresh UUID (unique across processes). */
export function requestId (req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
}

/** Returns the id on every response and logs `request done` at info (sockets log their own lines). */
export function addRequestLog (app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  app.addHook('onResponse', async (request, reply) => {
    if ((request as { ws?: boolean }).ws) return
    request.log.info({
      method: request.method,
      route: request.routeOptions.url ?? '(no route)',
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      client: request.ip
    }, 'request done')
  })
}
