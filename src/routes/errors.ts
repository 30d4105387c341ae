/** One error shape for every HTTP error: { error: { code, message } }; 5xx details stay in the log. */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { redactUrl } from '../auth/credentials.js'
import { BadRequest } from '../errors.js'
import { StoreError } from '../store/types.js'

export function errorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (error instanceof StoreError) {
    request.log.warn({ err: error }, 'store unavailable')
    void reply.code(503).send({ error: { code: 'STORE_UNAVAILABLE', message: 'storage is unavailable; retry shortly' } })
    return
  }
  if (error.validation) {
    void reply.code(400).send({ error: { code: 'BAD_REQUEST', message: `${error.validationContext ?? 'request'} ${error.message}` } })
    return
  }
  const status = error.statusCode ?? 500
  if (status >= 500) {
    request.log.error({ err: error }, 'request failed')
    void reply.code(status).send({ error: { code: 'INTERNAL_ERROR', message: 'internal error' } })
    return
  }
  void reply.code(status).send({ error: { code: status === 429 ? 'RATE_LIMITED' : error.code ?? 'ERROR', message: error.message } })
}

/** Errors Fastify raises before routing (a URL that does not decode, say): the same shape, 400. */
export function frameworkErrorHandler (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  // No hook ran (helmet's included): this answer sets its own restrictive headers.
  void reply.code(400)
    .header('content-security-policy', "default-src 'none'")
    .header('x-content-type-options', 'nosniff')
    .send({ error: { code: 'BAD_REQUEST', message: error.message } })
}

export function notFoundHandler (request: FastifyRequest, reply: FastifyReply): void {
  void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `Route ${request.method} ${redactUrl(request.url)} not found` } })
}

/**
 * preHandler: the schema validator coerces `1e400` to Infinity and lets it through `maximum` (a number past
 * every bound), so a query number that is not finite is refused here, after coercion, for every route.
 */
export async function finiteQuery (request: FastifyRequest): Promise<void> {
  const query = request.query
  if (query === null || typeof query !== 'object') return
  for (const [key, value] of Object.entries(query)) {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new BadRequest(`querystring/${key} must be a finite number`)
  }
}
