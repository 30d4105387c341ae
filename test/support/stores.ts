/** The three backends on real engines, each on its own fresh data: memory, Postgres (scratch database), Supabase (PostgREST stand-in). */
import { randomBytes } from 'node:crypto'
import pino from 'pino'
import { createMemoryStore } from '../../src/store/memory.js'
import { createPostgresStore } from '../../src/store/postgres.js'
import { createSupabaseStore } from '../../src/store/supabase.js'
import type { SessionRepository } from '../../src/store/types.js'
import { applySchema, createScratchDatabase } from './postgres.js'
import { startPostgrestStandIn } from './postgrest-stand-in.js'

const silent = pino({ level: 'silent' })

export interface StoreVariant {
  name: 'memory' | 'postgres' | 'supabase'
  /** A store on a fresh schema (a scratch database for the SQL ones); `open` may be called again for a second instance on the same data. */
  start: () => Promise<{ store: SessionRepository; open: () => SessionRepository; stop: () => Promise<void> }>
}

/** The three backends on real engines: memory, Postgres (scratch database), Supabase (PostgREST stand-in on a scratch database). */
export const STORE_VARIANTS: StoreVariant[] = [
  {
    name: 'memory',
    start: async () => {
      const store = createMemoryStore()
      return { store, open: () => store, stop: async () => {} }
    }
  },
  {
    name: 'postgres',
    start: async () => {
      const db = await createScratchDatabase()
      await applySchema(db.url)
      const opened: SessionRepository[] = []
      const open = (): SessionRepository => {
        const s = createPostgresStore({ connectionString: db.url, poolMax: 4, logger: silent })
        opened.push(s)
        return s
      }
      const store = open()
      return { store, open, stop: async () => { for (const s of opened) await s.close(); await db.drop() } }
    }
  },
  {
    name: 'supabase',
    start: async () => {
      const db = await createScratchDatabase()
      await applySchema(db.url)
      const serviceKey = `service-${randomBytes(8).toString('hex')}`
      const standIn = await startPostgrestStandIn({ databaseUrl: db.url, serviceKey })
      const opened: SessionRepository[] = []
      const open = (): SessionRepository => {
        const s = createSupabaseStore({ url: standIn.url, serviceRoleKey: serviceKey, logger: silent })
        opened.push(s)
        return s
      }
      const store = open()
      return {
        store,
        open,
        stop: async () => { for (const s of opened) await s.close(); await standIn.close(); await db.drop() }
      }
    }
  }
]
