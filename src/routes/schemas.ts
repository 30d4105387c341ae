/** REST request/response schemas: zod here, JSON Schema for Fastify's validation, serialisation and OpenAPI. */
import { z } from 'zod'
import { SessionId } from '../protocol.js'
import { SESSION_CURSOR } from './session-cursor.js'

const json = (schema: z.ZodType) => z.toJSONSchema(schema, { target: 'draft-7', unrepresentable: 'any', io: 'input' })

export const SessionRecordSchema = z.object({
  id: z.string(),
  owner: z.string().nullable().describe('the principal that created the session (null: created while authentication was off)'),
  status: z.enum(['active', 'ended']),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  durationMs: z.number().nullable(),
  summary: z.string().nullable(),
  summaryStatus: z.enum(['none', 'pending', 'ready', 'failed']),
  summaryError: z.string().nullable(),
  messageCount: z.number().int(),
  lastSeq: z.number().int(),
  title: z.string().nullable()
})

export const ErrorResponse = z.object({ error: z.object({ code: z.string(), message: z.string() }) })

/** Every /api route is rate limited per client (RATE_HTTP_PER_MIN): 429 with `retry-after`; 401 when auth is on and the credential is missing or bad. */
const errors = { 400: json(ErrorResponse), 401: json(ErrorResponse), 404: json(ErrorResponse), 429: json(ErrorResponse), 503: json(ErrorResponse) }
/** OpenAPI: the /api routes take `Authorization: Bearer <JWT or API key>` when authentication is on. */
const secured = { security: [{ bearerAuth: [] }] }

export const getSessionSchema = {
  summary: 'A session: status, duration and summary',
  tags: ['sessions'],
  ...secured,
  params: json(z.object({ id: SessionId })),
  response: { 200: json(SessionRecordSchema), ...errors }
}

export const listEventsSchema = {
  summary: "A page of the session's event log (stored events in seq order)",
  tags: ['sessions'],
  ...secured,
  params: json(z.object({ id: SessionId })),
  querystring: json(z.object({
    // Seqs are 32-bit integers in the SQL stores; anything larger (or 1e400, which coerces to Infinity) is a 400.
    after: z.coerce.number().int().min(0).max(2_147_483_647).default(0),
    limit: z.coerce.number().int().min(1).max(1000).default(200)
  })),
  response: {
    200: json(z.object({
      events: z.array(z.looseObject({ type: z.string(), seq: z.number().int(), ts: z.string() })),
      nextAfter: z.number().int().nullable().describe('pass as `after` for the next page; null when this page is the last')
    })),
    ...errors
  }
}

export const listSessionsSchema = {
  summary: "Recent sessions, newest first: the caller's own (admins: everyone's, or one owner's with ?owner=)",
  tags: ['sessions'],
  ...secured,
  querystring: json(z.object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    owner: z.string().min(1).max(256).regex(/^[^\u0000-\u001f\u007f]+$/, 'no control characters').optional().describe('admins (or an open server): only this principal\'s sessions'),
    before: z.union([
      z.string().regex(SESSION_CURSOR).describe('`nextBefore` of the previous page: the sessions after that one'),
      z.iso.datetime({ offset: true }).describe('a time: the sessions that started before it')
    ]).optional()
  })),
  response: {
    200: json(z.object({
      sessions: z.array(SessionRecordSchema),
      nextBefore: z.string().nullable().describe('pass as `before` for the next page (`<startedAt>~<id>`); null when this page is the last')
    })),
    ...errors
  }
}

export const meSchema = {
  summary: 'Who the caller is, and their token use today',
  tags: ['identity'],
  ...secured,
  response: {
    200: json(z.object({
      principal: z.string().nullable().describe('null when authentication is off'),
      admin: z.boolean(),
      usage: z.object({ today: z.number().int(), budget: z.number().int().nullable() })
    })),
    401: json(ErrorResponse),
    429: json(ErrorResponse),
    503: json(ErrorResponse)
  }
}

export const authConfigSchema = {
  summary: 'How the page signs in (public)',
  tags: ['identity'],
  response: {
    200: json(z.object({
      enabled: z.boolean(),
      mode: z.enum(['none', 'token', 'supabase']),
      supabase: z.object({ url: z.string(), anonKey: z.string() }).optional()
    }))
  }
}

/** A counted limit: how much is in use now against its cap. */
const used = z.object({ used: z.number().int(), max: z.number().int() })

export const healthSchema = {
  summary: 'Liveness and dependencies; 200 even when degraded',
  tags: ['health'],
  response: {
    200: json(z.object({
      status: z.enum(['ok', 'degraded']),
      version: z.string(),
      uptimeS: z.number(),
      model: z.object({ provider: z.string(), name: z.string(), offline: z.boolean() }),
      store: z.object({ kind: z.string(), ok: z.boolean(), pendingWrites: z.number().int(), error: z.string().optional() }),
      sessions: z.object({ live: z.number().int() }),
      cluster: z.object({
        instanceId: z.string(),
        bus: z.enum(['up', 'down']).describe('Redis (REDIS_URL); down: sessions keep working on their owners, sockets on other instances must reconnect'),
        links: z.object({ forwarded: z.number().int(), served: z.number().int(), published: z.number().int().describe('bus messages sent since start') })
      }).optional().describe('Cluster mode only (REDIS_URL)'),
      mcp: z.record(z.string(), z.object({
        state: z.enum(['connecting', 'ready', 'down', 'closed']),
        transport: z.enum(['stdio', 'http']),
        tools: z.number().int().describe('tools offered to the model now'),
        requireApproval: z.boolean().describe('its tools ask the user before each call'),
        attempts: z.number().int().describe('connection attempts since it was last ready'),
        error: z.string().optional()
      })).optional().describe('each MCP server of MCP_CONFIG (absent when it is unset)'),
      limits: z.object({
        sockets: used,
        liveSessions: used,
        turns: z.object({ running: z.number().int(), max: z.number().int(), queued: z.number().int(), maxQueued: z.number().int() }),
        summaries: z.object({ running: z.number().int(), max: z.number().int() }),
        perAddress: z.object({
          sockets: used.describe('the busiest client address'),
          newSessionsPerMin: z.number().int(),
          messagesPerMin: z.number().int()
        }),
        perUser: z.object({ sockets: used.describe('the busiest principal'), messagesPerMin: z.number().int() }),
        perSession: z.object({ sockets: z.number().int(), messagesPerMin: z.number().int() }),
        perConnection: z.object({ framesPerMin: z.number().int() }),
        http: z.object({ requestsPerMinPerAddress: z.number().int() })
      }).describe('each limit in force, and for counted ones how much is in use (`used` of `max`)')
    })),
    429: json(ErrorResponse)
  }
}

export const liveSchema = {
  summary: 'Liveness probe: 200 while the process runs',
  tags: ['health'],
  response: { 200: json(z.object({ status: z.literal('live') })) }
}

export const readySchema = {
  summary: 'Readiness probe: 200 once start-up is done; 503 before, and from the first moment of a drain (SIGTERM)',
  tags: ['health'],
  response: {
    200: json(z.object({ status: z.literal('ready') })),
    503: json(z.object({ status: z.enum(['starting', 'draining']) }))
  }
}
