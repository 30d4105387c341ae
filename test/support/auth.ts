/** Identity for tests (DESIGN §10): HS256 tokens signed with jose, an admin API key, REST and sockets as a principal, stores to run on. */
import { randomBytes, randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import { TestClient, type Frame, type RunningApp } from './app.js'

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

export { STORE_VARIANTS, type StoreVariant } from './stores.js'
