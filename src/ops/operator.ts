/** Who may see internals (/metrics, /health's error text): loopback clients, METRICS_TOKEN holders, admins. */
import { timingSafeEqual, createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { bearerToken } from '../auth/credentials.js'
import type { Authenticator } from '../auth/types.js'
import { isLoopbackHost } from '../config.js'

/** `operator`: may see internals; `none`: no credential was presented; `wrong`: one was, and it is not accepted. */
export type OperatorAccess = 'operator' | 'none' | 'wrong'

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

/** `request.ip` follows Fastify's trustProxy, so behind a trusted proxy the real client address decides. */
export function createOperatorCheck ({ metricsToken, auth, allowAdmins }: { metricsToken?: string; auth: Authenticator; allowAdmins: boolean }) {
  const tokenDigest = metricsToken === undefined ? undefined : digest(metricsToken)
  return async function operatorAccess (request: FastifyRequest): Promise<OperatorAccess> {
    if (isLoopbackHost(request.ip)) return 'operator'
    const presented = bearerToken(request.headers)
    if (presented === undefined) return 'none'
    if (tokenDigest && timingSafeEqual(digest(presented), tokenDigest)) return 'operator'
    if (allowAdmins && auth.enabled) {
      try {
        if ((await auth.authenticate(presented)).admin) return 'operator'
      } catch { /* not a credential of ours: the caller is told nothing more */ }
    }
    return 'wrong'
  }
}
