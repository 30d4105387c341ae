/** REST authentication: a hook that verifies the bearer credential of every request in its scope, and the principal it found. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { bearerToken } from './credentials.js'
import { AuthError, type Authenticator, type Principal } from './types.js'

/** The verified caller of a request: per-request state in a WeakMap, not a decorated request object. */
const principals = new WeakMap<FastifyRequest, Principal>()

/** The caller of a request that passed the hook; null when authentication is off. */
export function principalOf (request: FastifyRequest): Principal | null {
  return principals.get(request) ?? null
}

/**
 * A preValidation hook (after the route's rate limit, before its schema: a caller with no credential learns
 * nothing about the route's parameters). 401 with `WWW-Authenticate: Bearer` on a missing or bad credential,
 * 503 when the keys could not be fetched.
 */
export function requireAuth (auth: Authenticator) {
  return async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (!auth.enabled) return
    try {
      principals.set(request, await auth.authenticate(bearerToken(request.headers)))
    } catch (err) {
      if (!(err instanceof AuthError)) throw err
      if (err.kind === 'unavailable') {
        request.log.warn({ err: err.message }, 'could not verify a credential')
        await reply.code(503).header('retry-after', '5').send({ error: { code: 'AUTH_UNAVAILABLE', message: 'credentials cannot be verified right now; retry shortly' } })
        return
      }
      request.log.info({ reason: err.message }, 'request refused: not authenticated')
      await reply.code(401)
        .header('www-authenticate', `Bearer realm="api", error="invalid_token", error_description="${err.message.replace(/"/g, "'")}"`)
        .send({ error: { code: 'UNAUTHENTICATED', message: err.message } })
    }
  }
}
