/** Maps node-postgres failures to StoreError: connection trouble is retryable, SQL errors are not. */
import { FENCED_SQLSTATE } from './sql-codec.js'
import { FencedError, StoreError } from './types.js'

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH',
  'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN'
])
/** admin/crash shutdown, cannot connect now, query cancelled (statement timeout), serialization, deadlock. */
const RETRYABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '57014', '40001', '40P01'])
const CONNECTION_MESSAGES = /connection terminated|connection ended|not queryable|timeout exceeded when trying to connect|query read timeout|connection timeout|server closed the connection|socket hang up/i

interface PgLikeError { code?: unknown; message?: unknown; errors?: unknown }

export function isRetryablePgError (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const e = err as PgLikeError
  const code = typeof e.code === 'string' ? e.code : ''
  if (NETWORK_CODES.has(code) || RETRYABLE_SQLSTATES.has(code)) return true
  // SQLSTATE classes 08 (connection exception) and 53 (insufficient resources, e.g. too many connections)
  if (/^(08|53)[0-9A-Z]{3}$/.test(code)) return true
  // Node's happy-eyeballs connect rejects with an AggregateError holding one error per address.
  if (Array.isArray(e.errors) && e.errors.some(isRetryablePgError)) return true
  return typeof e.message === 'string' && CONNECTION_MESSAGES.test(e.message)
}

/** Wraps any failure of `op` in a StoreError, keeping the driver error as `cause`. */
export function toStoreError (err: unknown, op: string): StoreError {
  if (err instanceof StoreError) return err
  const e = (typeof err === 'object' && err !== null ? err : {}) as PgLikeError
  const code = typeof e.code === 'string' ? e.code : undefined
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err)
  if (code === FENCED_SQLSTATE) return new FencedError(`fenced off during ${op}: ${message}`, { cause: err })
  if (isRetryablePgError(err)) {
    return new StoreError(`postgres unavailable during ${op}: ${code ? `${code} ` : ''}${message}`, true, { cause: err })
  }
  return new StoreError(`postgres error during ${op}${code ? ` (${code})` : ''}: ${message}`, false, { cause: err })
}
