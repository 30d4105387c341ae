/** REST: a session's record, its event log, the caller's sessions and who the caller is — each only for its owner (DESIGN §10). */
import type { FastifyInstance } from 'fastify'
import { listedOwner, mayRead } from '../auth/session-access.js'
import { principalOf, requireAuth } from '../auth/rest.js'
import type { Principal } from '../auth/types.js'
import { BadRequest, SessionNotFound } from '../errors.js'
import type { SessionRecord } from '../store/types.js'
import { getSessionSchema, listEventsSchema, listSessionsSchema, meSchema } from './schemas.js'
import { decodeCursor, encodeCursor } from './session-cursor.js'

export default async function sessionRoutes (app: FastifyInstance): Promise<void> {
  const { store, auth, budget } = app.services
  // Every route of this plugin: after the route's rate limit, before its schema.
  app.addHook('preValidation', requireAuth(auth))

  /** The session when the caller may see it; 404 otherwise. */
  const readable = async (id: string, principal: Principal | null): Promise<SessionRecord> => {
    const record = await store.getSession(id)
    if (!record || !mayRead(record, principal)) throw new SessionNotFound(id)
    return record
  }

  app.get<{ Params: { id: string } }>('/api/session/:id', { schema: getSessionSchema }, async (request) => {
    return toResponse(await readable(request.params.id, principalOf(request)))
  })

  app.get<{ Params: { id: string }; Querystring: { after: number; limit: number } }>(
    '/api/session/:id/events', { schema: listEventsSchema }, async (request) => {
      const { id } = request.params
      const { after, limit } = request.query
      const principal = principalOf(request)
      if (principal) await readable(id, principal)
      const events = await store.listEvents(id, { after, limit })
      if (!principal && events.length === 0 && after === 0 && !(await store.getSession(id))) throw new SessionNotFound(id)
      return { events, nextAfter: events.length === limit ? events.at(-1)!.seq : null }
    })

  app.get<{ Querystring: { limit: number; before?: string; owner?: string } }>('/api/sessions', { schema: listSessionsSchema }, async (request) => {
    const { limit, before } = request.query
    const principal = principalOf(request)
    const owner = listedOwner(principal, request.query.owner)
    const cursor = before === undefined ? {} : decodeCursor(before)
    if (!cursor) throw new BadRequest(`querystring/before ${before} is not a date`)
    const sessions = await store.listSessions({ limit, ...cursor, ...(owner === undefined ? {} : { owner }) })
    return { sessions: sessions.map(toResponse), nextBefore: sessions.length === limit ? encodeCursor(sessions.at(-1)!) : null }
  })

  app.get('/api/me', { schema: meSchema }, async (request) => {
    const principal = principalOf(request)
    const today = principal && budget ? await budget.usedToday(principal.id) : 0
    return { principal: principal?.id ?? null, admin: principal?.admin ?? false, usage: { today, budget: budget?.limit ?? null } }
  })
}

function toResponse (r: SessionRecord) {
  const { openTurnId: _open, version: _version, ...rest } = r
  return rest
}
