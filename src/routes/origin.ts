/**
 * Who may talk to the server: the Host a request names and the Origin a browser sends. Both default to
 * loopback names and HOST only, which stops DNS-rebinding pages from reaching a server bound to 127.0.0.1.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1'])
const ANY_INTERFACE = new Set(['0.0.0.0', '::', '[::]'])

export interface HostPolicy {
  /** Browsers send Origin; clients that send none (wscat, servers) are allowed. */
  originAllowed (origin: string | undefined): boolean
  hostAllowed (host: string | undefined): boolean
}

export function createHostPolicy (config: Pick<Config, 'HOST' | 'allowedOrigins'>): HostPolicy {
  const anyone = config.allowedOrigins.includes('*')
  const origins = new Set<string>()
  const hosts = new Set(LOOPBACK)
  if (!ANY_INTERFACE.has(config.HOST)) hosts.add(config.HOST.toLowerCase())
  for (const o of config.allowedOrigins) {
    const url = parseUrl(o)
    if (url) { origins.add(url.origin); hosts.add(url.hostname) }
  }
  return {
    originAllowed (origin) {
      if (origin === undefined || anyone) return true
      const url = parseUrl(origin)
      if (!url) return false
      return origins.size > 0 ? origins.has(url.origin) : hosts.has(url.hostname)
    },
    hostAllowed (host) {
      if (anyone) return true
      if (!host) return false
      const url = parseUrl(`http://${host}`)
      return url !== null && hosts.has(url.hostname)
    }
  }
}

/** onRequest hook: a request naming a host we do not serve is refused before any route runs. */
export function hostGuard (policy: HostPolicy) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (policy.hostAllowed(request.headers.host)) return
    await reply.code(403).send({ error: { code: 'HOST_NOT_ALLOWED', message: 'this host name is not served here: add its origin to ALLOWED_ORIGINS' } })
  }
}

function parseUrl (value: string): URL | null {
  try {
    return new URL(value)
  } catch {
    return null
  }
}
