/** The error catalogue: HTTP errors the routes throw, and the WebSocket error frames the chat layer sends. */
import createError from '@fastify/error'
import type { ErrorCode, ErrorFrame } from './protocol.js'

export const SessionNotFound = createError('SESSION_NOT_FOUND', 'Session %s not found', 404)
export const BadRequest = createError('BAD_REQUEST', '%s', 400)

const retryableCodes: ReadonlySet<ErrorCode> = new Set(['busy', 'busy_server', 'rate_limited', 'store_unavailable', 'llm_unavailable'])

/** Builds an `error` frame; `retryable` follows the code unless given. */
export function errorFrame (code: ErrorCode, message: string, extra: Partial<Omit<ErrorFrame, 'type' | 'code' | 'message'>> = {}): ErrorFrame {
  return { type: 'error', code, message, retryable: extra.retryable ?? retryableCodes.has(code), ...extra }
}
