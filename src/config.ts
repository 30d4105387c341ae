/** Validates the environment once at start-up into one typed, immutable Config. */
import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { z } from 'zod'

const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def)

/** Node's timers fire at once past 2^31−1 ms (about 24.8 days): a longer wait would mean no wait at all. */
const MAX_TIMER_MS = 2_147_483_647
const ms = (def: number, min = 0, max = MAX_TIMER_MS) => max < MAX_TIMER_MS
  ? int(def, min, max)
  : z.coerce.number().int().min(min).max(MAX_TIMER_MS, `at most ${MAX_TIMER_MS} ms (about 24.8 days): Node's timers cannot wait longer`).default(def)

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' })

/** An origin as a browser sends it: scheme, host and optional port, nothing else ("*" allows any). */
const isOrigin = (value: string): boolean => {
  if (value === '*') return true
  try {
    const url = new URL(value)
    // URL accepts `*` in a host name, but origins are matched exactly: `https://*.example.com` would match nothing.
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.pathname === '/' && !url.hostname.includes('*') &&
      url.search === '' && url.hash === '' && url.username === '' && url.password === ''
  } catch {
    return false
  }
}

/**
 * A Redis URL ioredis can use as given: it throws on one `new URL` refuses (printing it, password and all) and
 * sends `SELECT` with whatever path follows the host, so only a database number may.
 */
const isRedisUrl = (value: string): boolean => {
  try {
    const url = new URL(value)
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' && /^\/?\d*$/.test(url.pathname) && url.search === '' && url.hash === ''
  } catch {
    return false
  }
}

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()))

/** `name:secret` pairs, comma separated (API_KEYS). A key's principal is `apikey:<name>`. */
const API_KEY_NAME = /^[A-Za-z0-9_.-]{1,64}$/
const MIN_API_KEY_CHARS = 16
const MIN_JWT_SECRET_CHARS = 32

const list = (value: string | undefined): string[] => (value ?? '').split(',').map((s) => s.trim()).filter(Boolean)

function parseApiKeys (value: string | undefined): Array<{ name: string; secret: string }> {
  const keys = list(value).map((pair, i) => {
    const at = pair.indexOf(':')
    const name = at < 0 ? '' : pair.slice(0, at)
    const secret = at < 0 ? '' : pair.slice(at + 1)
    // Only the entry's position says which is wrong: an entry written the wrong way round (secret:name) would
    // otherwise print its secret as the "name".
    const entry = `entry ${i + 1}`
    if (!API_KEY_NAME.test(name)) throw new ConfigError(`Invalid configuration: API_KEYS: ${entry} must be name:secret with a name of letters, digits, _ . -`)
    if (secret.length < MIN_API_KEY_CHARS) throw new ConfigError(`Invalid configuration: API_KEYS: the secret of ${entry} must be at least ${MIN_API_KEY_CHARS} characters (is it written name:secret?)`)
    return { name, secret }
  })
  const names = new Set(keys.map((k) => k.name))
  if (names.size !== keys.length) throw new ConfigError('Invalid configuration: API_KEYS: a key name appears twice')
  if (new Set(keys.map((k) => k.secret)).size !== keys.length) throw new ConfigError('Invalid configuration: API_KEYS: two keys share one secret')
  return keys
}

/**
 * TRUST_PROXY: addresses or CIDRs, as Fastify's `trustProxy` takes them. `true` is refused: it would believe an
 * X-Forwarded-For from anyone, so every per-address limit could be walked round by rotating the header.
 */
function parseTrustedProxies (value: string | undefined): string[] {
  if (value === undefined || value.toLowerCase() === 'false') return []
  if (value.toLowerCase() === 'true') {
    throw new ConfigError('Invalid configuration: TRUST_PROXY: true would trust X-Forwarded-For from any client; list the proxies instead (addresses or CIDRs, comma separated, e.g. TRUST_PROXY=10.0.0.2,10.1.0.0/16)')
  }
  const entries = list(value)
  for (const entry of entries) {
    const [address, bits, extra] = entry.split('/')
    const family = isIP(address ?? '')
    const prefixOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32))
    if (family === 0 || extra !== undefined || !prefixOk) {
      throw new ConfigError(`Invalid configuration: TRUST_PROXY: "${entry}" is not an address or CIDR (expected e.g. 10.0.0.2, 10.0.0.0/8 or fd00::/8)`)
    }
  }
  return entries
}

/** A Supabase key that bypasses row level security: a legacy JWT with role service_role, or a new-style secret key. */
function isServiceKey (key: string): boolean {
  if (key.startsWith('sb_secret_')) return true
  const payload = key.split('.')[1]
  if (payload === undefined) return false
  try {
    return (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { role?: unknown }).role === 'service_role'
  } catch {
    return false
  }
}

/**
 * Settings that would be ignored, or worse, published: SUPABASE_ANON_KEY is served to every browser by
 * GET /auth/config, so a service-role key there would hand out a key that bypasses row level security.
 */
function checkSignInSettings (config: Config, refuse: (name: string, why: string) => never): void {
  const anon = config.SUPABASE_ANON_KEY
  if (anon !== undefined) {
    if (anon === config.SUPABASE_SERVICE_ROLE_KEY || isServiceKey(anon)) {
      refuse('SUPABASE_ANON_KEY', 'is a service-role (secret) key; it is published to browsers by GET /auth/config — use the project\'s anon (publishable) key')
    }
    if (!config.SUPABASE_URL) refuse('SUPABASE_ANON_KEY', 'needs SUPABASE_URL (the project whose Auth the page signs in with)')
    if (!config.AUTH_JWKS_URL && !config.AUTH_JWT_SECRET) {
      refuse('SUPABASE_ANON_KEY', 'Supabase sign-in needs AUTH_JWKS_URL (or AUTH_JWT_SECRET) to verify the tokens it issues')
    }
  }
  if (config.authAdmins.length > 0 && !config.authEnabled) refuse('AUTH_ADMINS', 'has no effect without AUTH_JWT_SECRET, AUTH_JWKS_URL or API_KEYS')
}

/** True for addresses only this machine can reach: what may run with no authentication. */
export function isLoopbackHost (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(8001, 0, 65535),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Public origin(s) allowed to open WebSockets, comma separated. Empty → the server's own origin and localhost. */
  ALLOWED_ORIGINS: optionalString,
  /** Proxies whose X-Forwarded-For is believed: addresses/CIDRs, comma separated; false or empty: none. */
  TRUST_PROXY: optionalString,

  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString.pipe(httpUrl.optional()),
  LLM_PROVIDER: z.enum(['openai', 'offline']).optional(),
  LLM_MODEL: z.string().min(1).default('gpt-4o-mini'),
  LLM_TEMPERATURE: z.coerce.number().min(0).max(2).optional(),
  LLM_MAX_TOKENS: z.coerce.number().int().positive().optional(),
  LLM_TIMEOUT_MS: ms(30_000, 100),
  LLM_MAX_RETRIES: int(2, 0, 10),
  SYSTEM_PROMPT: optionalString,
  HISTORY_TOKEN_BUDGET: int(6_000, 100),

  OFFLINE_TOKEN_DELAY_MS: ms(30, 0, 10_000),
  /** Fault knob for the offline model: none | fail | slow:<ms> | cut:<n> (see README). */
  OFFLINE_FAULT: z
    .string()
    .regex(/^(none|fail|slow:\d+|cut:\d+)$/, 'expected none, fail, slow:<ms> or cut:<tokens>')
    .refine((v) => !v.startsWith('slow:') || Number(v.slice(5)) <= MAX_TIMER_MS, `slow:<ms> is at most ${MAX_TIMER_MS} ms`)
    .default('none'),

  STORAGE: z.enum(['memory', 'postgres', 'supabase']).default('memory'),
  DATABASE_URL: optionalString,
  DATABASE_POOL_MAX: int(5, 1, 100),
  SUPABASE_URL: optionalString.pipe(httpUrl.optional()),
  SUPABASE_SERVICE_ROLE_KEY: optionalString,
  SUPABASE_KEY: optionalString,
  /** The project's public anon key: with SUPABASE_URL it turns on Supabase sign-in in the page (DESIGN §10). */
  SUPABASE_ANON_KEY: optionalString,

  /** DESIGN §10. Any of AUTH_JWT_SECRET, AUTH_JWKS_URL, API_KEYS turns authentication on. */
  AUTH_JWT_SECRET: optionalString.pipe(z.string().min(MIN_JWT_SECRET_CHARS, `at least ${MIN_JWT_SECRET_CHARS} characters (HS256 wants a 256-bit key)`).optional()),
  AUTH_JWKS_URL: optionalString.pipe(httpUrl.optional()),
  AUTH_JWT_ISSUER: optionalString,
  AUTH_JWT_AUDIENCE: optionalString,
  /** After a refetch of the JWKS, an unknown `kid` waits this long before the next one (jose's cooldown). */
  AUTH_JWKS_COOLDOWN_MS: ms(30_000, 0, 3_600_000),
  API_KEYS: optionalString,
  AUTH_ADMINS: optionalString,
  AUTH_DISABLED: z.stringbool().default(false),
  RATE_MESSAGES_PER_MIN_PER_USER: int(60, 1),
  MAX_SOCKETS_PER_USER: int(32, 1),
  /** Prompt + completion tokens per principal per UTC day; unset: no budget. */
  USER_DAILY_TOKEN_BUDGET: z.coerce.number().int().positive().optional(),

  MAX_MESSAGE_BYTES: int(64 * 1024, 256),
  MAX_MESSAGE_CHARS: int(8_000, 1),
  MAX_TOOL_STEPS: int(5, 1, 50),
  TOOL_TIMEOUT_MS: ms(10_000, 10),
  /** Tools that ask the user before each call: names, comma separated, `*` for all (MCP tools ask by default). */
  TOOLS_REQUIRE_APPROVAL: optionalString,
  /** How long a call waits for its approval before it counts as declined. */
  TOOL_APPROVAL_TIMEOUT_MS: ms(300_000, 10),
  /** A JSON file in the common `{"mcpServers": {...}}` format; unset: no MCP tools (DESIGN §13). */
  MCP_CONFIG: optionalString,
  /** The first wait before reconnecting a failed or dead MCP server; doubled per failure up to 30 s. */
  MCP_RECONNECT_MS: ms(1_000, 10),
  DISCONNECT_GRACE_MS: ms(10_000, 0),
  /** DESIGN §11: an instance owns each live session under a lease this long, renewed a few times within it. */
  SESSION_LEASE_MS: ms(10_000, 300),
  /** DESIGN §11: cluster mode — Redis carries live frames between instances (needs STORAGE=postgres or supabase). */
  REDIS_URL: optionalString.pipe(z.string().refine(isRedisUrl, 'a redis:// or rediss:// URL: [user:password@]host[:port][/db number]').optional()),
  /** SIGTERM: running turns go on this long (their frames reach clients on other instances), then close interrupted. */
  DRAIN_TIMEOUT_MS: ms(30_000, 0, 600_000),
  /** Names this instance in session leases and logs; default: random per start. */
  INSTANCE_ID: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits and _ . : - (at most 64)').default(() => `i-${randomBytes(6).toString('hex')}`),
  /** Recent events a live session keeps in memory (replay, model context); older ones are read back from the store. */
  SESSION_MEMORY_EVENTS: int(1_000, 10),
  RATE_MESSAGES_PER_MIN: int(30, 1),
  RATE_FRAMES_PER_MIN: int(600, 1),
  MAX_SOCKETS_PER_SESSION: int(8, 1),
  RATE_HTTP_PER_MIN: int(600, 1),
  /** Per client address (the socket's, or the forwarded one from a TRUST_PROXY proxy). */
  MAX_SOCKETS_PER_IP: int(64, 1),
  MAX_NEW_SESSIONS_PER_IP_PER_MIN: int(30, 1),
  RATE_MESSAGES_PER_MIN_PER_IP: int(60, 1),
  /** Sockets one client address opens per minute: every visit of a session stores two events (connected, disconnected). */
  RATE_CONNECTIONS_PER_MIN_PER_IP: int(120, 1),
  /** For the whole server. */
  MAX_SOCKETS: int(10_000, 1),
  MAX_LIVE_SESSIONS: int(5_000, 1),
  /** Turns running at once (each holds one model stream at a time); more wait in a fair queue. */
  MAX_CONCURRENT_TURNS: int(256, 1),
  MAX_QUEUED_TURNS: int(1_024, 0),
  /** Summary jobs at once; they take model slots only when no turn waits for one. */
  SUMMARY_CONCURRENCY: int(2, 1, 64),
  /** The memory store forgets ended sessions past this count or this age, oldest first. */
  MEMORY_MAX_SESSIONS: int(1_000, 1),
  MEMORY_SESSION_TTL_MS: ms(24 * 3_600_000, 1_000),
  MAX_SEND_BUFFER_BYTES: int(4 * 1024 * 1024, 1024),
  HEARTBEAT_MS: ms(30_000, 0),

  WRITER_BATCH_SIZE: int(256, 1),
  WRITER_FLUSH_MS: ms(20, 0, 50),
  WRITER_MAX_PENDING: int(50_000, 10),
  DURABLE_WAIT_MS: ms(3_000, 10),

  SUMMARY_POLL_MS: ms(500, 10),
  SUMMARY_LEASE_MS: ms(30_000, 100, 60_000),
  SUMMARY_MAX_ATTEMPTS: int(3, 1, 20),
  // The process gives up 5 s after this (server.ts): that timer must stay within Node's limit too.
  SHUTDOWN_TIMEOUT_MS: ms(10_000, 100, MAX_TIMER_MS - 5_000),
  /** Between readiness turning 503 (SIGTERM) and the server closing: time for a load balancer to stop routing here. */
  SHUTDOWN_DELAY_MS: ms(0, 0, 60_000),

  /** DESIGN §12: `off` removes /metrics and every count (nothing of prom-client is loaded). */
  METRICS: z.enum(['on', 'off']).default('on'),
  /** Bearer token that lets non-loopback clients read /metrics (and the internal parts of /health). */
  METRICS_TOKEN: optionalString,
  /** OTLP/HTTP endpoint for traces (e.g. http://collector:4318); unset: no tracer is loaded. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString.pipe(httpUrl.optional()),
  OTEL_SERVICE_NAME: z.string().min(1).default('realtime-ai-backend')
})

type Env = z.infer<typeof EnvSchema>

export interface Config extends Omit<Env, 'SUPABASE_KEY' | 'LLM_PROVIDER' | 'API_KEYS' | 'AUTH_ADMINS' | 'TRUST_PROXY'> {
  LLM_PROVIDER: 'openai' | 'offline'
  /** Resolved origins allowed to open a WebSocket; empty → same origin and localhost only. */
  allowedOrigins: string[]
  /** True when AUTH_JWT_SECRET, AUTH_JWKS_URL or API_KEYS is set: every socket and /api request needs a credential. */
  authEnabled: boolean
  apiKeys: ReadonlyArray<{ name: string; secret: string }>
  /** Principals (a JWT sub or apikey:<name>) that may read every session over REST. */
  authAdmins: readonly string[]
  /** TRUST_PROXY: the proxies (addresses or CIDRs) whose X-Forwarded-For names the client; empty: none. */
  trustedProxies: readonly string[]
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Pure: reads the given environment, never process.env directly, and throws one readable ConfigError. */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  // An empty value (`LLM_MAX_TOKENS=` as in .env.example) means unset, so the default applies.
  const set = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''))
  const parsed = EnvSchema.safeParse(set)
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
    throw new ConfigError(`Invalid configuration: ${issues}`)
  }
  const { SUPABASE_KEY, LLM_PROVIDER, API_KEYS, AUTH_ADMINS, TRUST_PROXY, ...rest } = parsed.data
  const provider = LLM_PROVIDER ?? (rest.OPENAI_API_KEY ? 'openai' : 'offline')
  const apiKeys = parseApiKeys(API_KEYS)
  const config: Config = {
    ...rest,
    LLM_PROVIDER: provider,
    SUPABASE_SERVICE_ROLE_KEY: rest.SUPABASE_SERVICE_ROLE_KEY ?? SUPABASE_KEY,
    allowedOrigins: list(rest.ALLOWED_ORIGINS),
    authEnabled: Boolean(rest.AUTH_JWT_SECRET ?? rest.AUTH_JWKS_URL) || apiKeys.length > 0,
    apiKeys,
    authAdmins: list(AUTH_ADMINS),
    trustedProxies: parseTrustedProxies(TRUST_PROXY)
  }
  const missing = (name: string, why: string) => { throw new ConfigError(`Invalid configuration: ${name}: ${why}`) }
  const badOrigins = config.allowedOrigins.filter((o) => !isOrigin(o))
  if (badOrigins.length > 0) {
    missing('ALLOWED_ORIGINS', `not an origin: ${badOrigins.join(', ')} (expected scheme://host[:port], e.g. https://chat.example.com, or *)`)
  }
  checkSignInSettings(config, missing)
  if (config.authEnabled && config.AUTH_DISABLED) {
    missing('AUTH_DISABLED', 'true contradicts AUTH_JWT_SECRET / AUTH_JWKS_URL / API_KEYS: remove one or the other')
  }
  if (!config.authEnabled && !config.AUTH_DISABLED && !isLoopbackHost(config.HOST)) {
    missing('HOST', `${config.HOST} is not a loopback address and no authentication is configured: set AUTH_JWT_SECRET, AUTH_JWKS_URL or API_KEYS (or AUTH_DISABLED=true for an open server)`)
  }
  if (provider === 'openai' && !config.OPENAI_API_KEY && !config.OPENAI_BASE_URL) {
    missing('OPENAI_API_KEY', 'required when LLM_PROVIDER=openai (or set OPENAI_BASE_URL for a keyless local endpoint)')
  }
  if (config.REDIS_URL !== undefined && config.STORAGE === 'memory') {
    missing('REDIS_URL', 'cluster mode needs a shared store: set STORAGE=postgres or STORAGE=supabase (the memory store is one process\'s own)')
  }
  if (config.STORAGE === 'postgres' && !config.DATABASE_URL) missing('DATABASE_URL', 'required when STORAGE=postgres')
  if (config.STORAGE === 'supabase') {
    if (!config.SUPABASE_URL) missing('SUPABASE_URL', 'required when STORAGE=supabase')
    if (!config.SUPABASE_SERVICE_ROLE_KEY) missing('SUPABASE_SERVICE_ROLE_KEY', 'required when STORAGE=supabase (SUPABASE_KEY is accepted too)')
  }
  return Object.freeze(config)
}

/** Config for tests and tools: the embedded defaults plus overrides. */
export function testConfig (overrides: Partial<Record<keyof Env, string>> = {}): Config {
  // Every test client comes from 127.0.0.1: the per-address limits are lifted unless a test sets them.
  const perAddress = { MAX_SOCKETS_PER_IP: '1000000', MAX_NEW_SESSIONS_PER_IP_PER_MIN: '1000000', RATE_MESSAGES_PER_MIN_PER_IP: '1000000', RATE_CONNECTIONS_PER_MIN_PER_IP: '1000000' }
  // A test app closes at once (no drain of running turns) unless a test sets DRAIN_TIMEOUT_MS.
  return loadConfig({ LOG_LEVEL: 'silent', PORT: '0', LLM_PROVIDER: 'offline', OFFLINE_TOKEN_DELAY_MS: '0', DRAIN_TIMEOUT_MS: '0', ...perAddress, ...overrides })
}
