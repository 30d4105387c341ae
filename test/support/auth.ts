/** Identity for tests (DESIGN §10): HS256 tokens signed with jose, an admin API key, REST and sockets as a principal, stores to run on. */
import { randomBytes, randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import pino from 'pino'
import { createMemoryStore } from '../../src/store/memory.js'
import { createPostgresStore } from '../../src/store/postgres.js'
import { createSupabaseStore } from '../../src/store/supabase.js'
import type { SessionRepository } from '../../src/store/types.js'
import { TestClient, type Frame, type RunningApp } from './app.js'
import { applySchema, createScratchDatabase } from './postgres.js'
import { startPostgrestStandIn } from './postgrest-stand-in.js'

export const JWT_SECRET = `jwt-secret-${randomBytes(16).toString('hex')}`
export const ADMIN_KEY = `ops-key-${randomBytes(12).toString('hex')}`
export const ADMIN = 'apikey:ops'

/** Auth on: HS256 tokens, and one API key (`ops`) that is an admin. Env values are strings. */
export const authEnv = (extra: Record<string, string> = {}): Record<string, string> =>
  ({ AUTH_JWT_SECRET: JWT_SECRET, API_KEYS: `ops:${ADMIN_KEY}`, AUTH_ADMINS: ADMIN, ...extra })

export interface User { sub: string; token: string }

/** A signed-in user with a random `sub` (stores may be shared by other runs: no two tests see each other's usage). */
export async function newUser (label: string): Promise<User> {
  const sub = `${label}-${randomUUID()}`
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt()
    .setExpirationTime('15m').sign(new TextEncoder().encode(JWT_SECRET))
  return { sub, token }
}

const credentialOf = (who: User | string): string => typeof who === 'string' ? who : who.token

/** A GET over REST with `Authorization: Bearer`. */
export function restAs (server: RunningApp, who: User | string, url: string) {
  return server.app.inject({ url, headers: { authorization: `Bearer ${credentialOf(who)}` } })
}

/** A socket with the credential in the Authorization header. */
export function connectAs (server: RunningApp, who: User | string, sessionId: string, after?: number): Promise<TestClient> {
  return TestClient.connect(server.wsUrl(sessionId, after), { headers: { authorization: `Bearer ${credentialOf(who)}` } })
}

/** What became of a socket: its `session` frame, or its close (whichever came first). */
export async function outcome (client: TestClient): Promise<{ session: Frame } | { closed: number }> {
  // waitFor rejects once the socket is closed: then the close is the answer.
  return await client.waitFor((f) => f.type === 'session').then(
    (session) => ({ session }),
    async () => ({ closed: (await client.closed).code })
  )
}

/** Every stored event of a session through REST, as `who` (404 → null). */
export async function storedEventsAs (server: RunningApp, who: User | string, sessionId: string): Promise<Frame[] | null> {
  const res = await restAs(server, who, `/api/session/${sessionId}/events?after=0&limit=500`)
  if (res.statusCode === 404) return null
  if (res.statusCode !== 200) throw new Error(`events of ${sessionId}: HTTP ${res.statusCode} ${res.body}`)
  return res.json().events as Frame[]
}

/** One user message on an open socket, up to its turn's stored `assistant_message`. */
export async function chat (client: TestClient, content: string): Promise<Frame> {
  const from = client.frames.length
  client.send({ type: 'user_message', content })
  return await client.waitFor((f) => f.type === 'assistant_message', { from, timeoutMs: 15_000 })
}

/** Milliseconds until the next UTC midnight. */
export const msToUtcMidnight = (): number => 86_400_000 - (Date.now() % 86_400_000)

export interface StoreVariant {
  name: 'memory' | 'postgres' | 'supabase'
  /** A store on a fresh schema (a scratch database for the SQL ones); `open` may be called again for a second instance on the same data. */
  start: () => Promise<{ store: SessionRepository; open: () => SessionRepository; stop: () => Promise<void> }>
}

const silent = pino({ level: 'silent' })

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
