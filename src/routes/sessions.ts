/** REST: a session's record, its event log, and the recent sessions list. */
import type { FastifyInstance } from 'fastify'
import { BadRequest, SessionNotFound } from '../errors.js'
import type { SessionRecord } from '../store/types.js'
import { getSessionSchema, listEventsSchema, listSessionsSchema } from './schemas.js'
import { decodeCursor, encodeCursor } from './session-cursor.js'

const rateLimit = (max: number) => ({ rateLimit: { max, timeWindow: '1 minute' } })

export default async function sessionRoutes (app: FastifyInstance): Promise<void> {
  const { store, config } = app.services
  const limits = { config: rateLimit(config.RATE_HTTP_PER_MIN) }

  app.get<{ Params: { id: string } }>('/api/session/:id', { schema: getSessionSchema, ...limits }, async (request) => {
    const record = await store.getSession(request.params.id)
    if (!record) throw new SessionNotFound(request.params.id)
    return toResponse(record)
  })

  app.get<{ Params: { id: string }; Querystring: { after: number; limit: number } }>(
    '/api/session/:id/events', { schema: listEventsSchema, ...limits }, async (request) => {
      const { id } = request.params
      const { after, limit } = request.query
      const events = await store.listEvents(id, { after, limit })
      if (events.length === 0 && after === 0 && !(await store.getSession(id))) throw new SessionNotFound(id)
      return { events, nextAfter: events.length === limit ? events.at(-1)!.seq : null }
    })

  app.get<{ Querystring: { limit: number; before?: string } }>('/api/sessions', { schema: listSessionsSchema, ...limits }, async (request) => {
    const { limit, before } = request.query
    const cursor = before === undefined ? {} : decodeCursor(before)
    if (!cursor) throw new BadRequest(`querystring/before ${before} is not a date`)
    const sessions = await store.listSessions({ limit, ...cursor })
    return { sessions: sessions.map(toResponse), nextBefore: sessions.length === limit ? encodeCursor(sessions.at(-1)!) : null }
  })
}

function toResponse (r: SessionRecord) {
  const { openTurnId: _open, version: _version, ...rest } = r
  return rest
}
