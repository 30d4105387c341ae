/** Picks the SessionRepository the configuration asks for: memory, postgres or supabase. */
import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import { createMemoryStore } from './memory.js'
import { createPostgresStore } from './postgres.js'
import { createSupabaseStore } from './supabase.js'
import type { SessionRepository } from './types.js'

export function createStore (config: Config, logger: Logger): SessionRepository {
  switch (config.STORAGE) {
    case 'memory':
      return createMemoryStore({ maxEndedSessions: config.MEMORY_MAX_SESSIONS, endedTtlMs: config.MEMORY_SESSION_TTL_MS })
    case 'postgres':
      return createPostgresStore({
        connectionString: required(config.DATABASE_URL, 'DATABASE_URL'),
        poolMax: config.DATABASE_POOL_MAX,
        logger
      })
    case 'supabase':
      return createSupabaseStore({
        url: required(config.SUPABASE_URL, 'SUPABASE_URL'),
        serviceRoleKey: required(config.SUPABASE_SERVICE_ROLE_KEY, 'SUPABASE_SERVICE_ROLE_KEY'),
        logger
      })
  }
}

/** loadConfig already refuses these; the check keeps a hand-built Config honest too. */
function required (value: string | undefined, name: string): string {
  if (!value) throw new Error(`${name} is required for this STORAGE`)
  return value
}
