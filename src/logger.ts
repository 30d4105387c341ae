/** The logger type the non-HTTP layers receive (Fastify's logger and a bare pino instance both fit). */
import type { LogFn } from 'pino'
import { redactUrl } from './auth/credentials.js'

/** The subset of pino's logger that Fastify's logger also has, so either can be passed. */
export interface Logger {
  level: string
  fatal: LogFn
  error: LogFn
  warn: LogFn
  info: LogFn
  debug: LogFn
  trace: LogFn
  child (bindings: Record<string, unknown>): Logger
}

/** Paths pino must never print: keys, service-role secrets, auth headers. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'config.AUTH_JWT_SECRET',
  'config.apiKeys',
  'AUTH_JWT_SECRET',
  'API_KEYS',
  'token',
  'access_token',
  '*.token',
  '*.access_token',
  'config.OPENAI_API_KEY',
  'config.METRICS_TOKEN',
  'METRICS_TOKEN',
  'config.SUPABASE_SERVICE_ROLE_KEY',
  'config.DATABASE_URL',
  'apiKey',
  'OPENAI_API_KEY',
  'SUPABASE_SERVICE_ROLE_KEY',
  'SUPABASE_KEY',
  'DATABASE_URL',
  '*.apiKey',
  '*.password'
]

/** A request as log lines show it: never the credential a browser socket carries in its query. */
function requestSerializer (req: { method?: string; url?: string; hostname?: string; ip?: string; socket?: { remotePort?: number } }) {
  return { method: req.method, url: req.url === undefined ? undefined : redactUrl(req.url), host: req.hostname, remoteAddress: req.ip, remotePort: req.socket?.remotePort }
}

/** What every Fastify logger of the app gets, whoever builds it: redaction of secrets and of `access_token`. */
export const LOG_SAFETY = {
  redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  serializers: { req: requestSerializer }
}
