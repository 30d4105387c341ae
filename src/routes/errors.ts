/** One error shape for every HTTP error: { error: { code, message } }; 5xx details stay in the log. */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
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
  void reply.code(status).send({ error: { code: error.code ?? 'ERROR', message: error.message } })
}

export function notFoundHandler (request: FastifyRequest, reply: FastifyReply): void {
  void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `Route ${request.method} ${request.url} not found` } })
}
