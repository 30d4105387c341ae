/** The logger type the non-HTTP layers receive (Fastify's logger and a bare pino instance both fit). */
import type { LogFn } from 'pino'

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
  'config.OPENAI_API_KEY',
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
