/** Shapes shared by the SQL stores: the rtb_append_events argument and the mapping of rtb_* results to the port's types. */
import type { StoredEvent } from '../protocol.js'
import { wellFormed } from '../text.js'
import { StoreError, type Acquired, type AppendEvent, type SeqRange, type SessionRecord, type SummaryJob, type SummaryJobCounts, type UserProfile } from './types.js'

/** The schema version supabase-schema.sql declares through rtb_schema_version(). */
export const SCHEMA_VERSION = 7

export const SCHEMA_HINT = 'apply supabase-schema.sql (psql -v ON_ERROR_STOP=1 -f supabase-schema.sql)'

/** Start-up refuses a schema of another version than this code's, saying how to apply the right one. */
export function checkSchemaVersion (version: number, hint: string): void {
  if (version !== SCHEMA_VERSION) throw new StoreError(`schema version ${version} found, ${SCHEMA_VERSION} expected: ${hint}`, false)
}

/**
 * The p_events argument of rtb_append_events, as JSON text. jsonb cannot hold U+0000 or a lone UTF-16
 * surrogate (from a client or a model that cut a pair), so each becomes U+FFFD in any string or key instead
 * of failing the whole batch forever.
 */
export function appendEventsJson (batch: AppendEvent[]): string {
  const rows = batch.map(({ sessionId, event, epoch }) => ({
    session_id: sessionId,
    seq: event.seq,
    type: event.type,
    turn_id: 'turnId' in event && typeof event.turnId === 'string' ? event.turnId : null,
    payload: event,
    created_at: event.ts,
    // Stryker disable next-line ConditionalExpression: JSON.stringify drops an undefined epoch the same way
    ...(epoch === undefined ? {} : { epoch })
  }))
  return JSON.stringify(rows, pgSafe)
}

/**
 * JSON.stringify replacer: strings, and the keys of objects (a tool call's arguments are the model's JSON,
 * keys included), made storable by pgText. A returned object's own values are visited after it.
 */
function pgSafe (_key: string, value: unknown): unknown {
  if (typeof value === 'string') return pgText(value)
  // Stryker disable next-line ConditionalExpression: a primitive has no keys, so the checks below hand it back unchanged
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value
  const keys = Object.keys(value)
  const clean = keys.map(pgText)
  // Stryker disable next-line ConditionalExpression,ArrowFunction: rebuilding a clean object gives the same keys in the same order; the test only saves a copy
  if (clean.every((k, i) => k === keys[i])) return value
  return Object.fromEntries(clean.map((k, i) => [k, (value as Record<string, unknown>)[keys[i]]]))
}

/** Postgres text and jsonb cannot hold U+0000 or a lone surrogate (`\ud800` in JSON is refused); each becomes U+FFFD. */
export function pgText (text: string): string {
  // Stryker disable next-line StringLiteral: includes('') is always true and replaceAll then finds what there is; the test only saves a scan
  const hasNul = text.includes('\u0000')
  return wellFormed(hasNul ? text.replaceAll('\u0000', '\uFFFD') : text)
}

/** rtb_get_session / rtb_list_sessions already build the SessionRecord keys; this only narrows types. */
export function toSessionRecord (value: unknown): SessionRecord | null {
  if (value === null || value === undefined) return null
  const r = value as SessionRecord
  return {
    id: r.id,
    owner: r.owner ?? null,
    status: r.status,
    startedAt: r.startedAt,
    endedAt: r.endedAt ?? null,
    durationMs: r.durationMs === null || r.durationMs === undefined ? null : Number(r.durationMs),
    summary: r.summary ?? null,
    summaryStatus: r.summaryStatus,
    summaryError: r.summaryError ?? null,
    messageCount: Number(r.messageCount),
    lastSeq: Number(r.lastSeq),
    title: r.title ?? null,
    openTurnId: r.openTurnId ?? null,
    version: Number(r.version)
  }
}

export function toSessionRecords (value: unknown): SessionRecord[] {
  return asArray(value).map((v) => toSessionRecord(v) as SessionRecord)
}

export function toEvents (value: unknown): StoredEvent[] {
  return asArray(value) as StoredEvent[]
}

/** A row of rtb_claim_summary_jobs; lease_until arrives as a Date (pg) or a timestamptz string (PostgREST). */
export function toSummaryJob (row: { session_id: string; version: number; attempts: number; lease_until: string | Date }): SummaryJob {
  return {
    sessionId: row.session_id,
    version: Number(row.version),
    attempts: Number(row.attempts),
    leaseUntil: new Date(row.lease_until).toISOString()
  }
}

/** rtb_add_usage / rtb_get_usage answer a bigint: a string from pg, a number from PostgREST. */
export function toUsage (value: unknown): number {
  const n = Number(value ?? 0)
  if (!Number.isSafeInteger(n)) throw new TypeError(`expected a token count from the database, got ${String(value)}`)
  return n
}

export function toProfile (value: unknown): UserProfile | null {
  // Stryker disable next-line ConditionalExpression: null passed through is null too
  if (value === null || value === undefined) return null
  return value as UserProfile
}

function asArray (value: unknown): unknown[] {
  if (Array.isArray(value)) return value
  if (value === null || value === undefined) return []
  throw new TypeError(`expected a JSON array from the database, got ${typeof value}`)
}

/** rtb_summary_job_counts' answer, with every count a number. */
export function toSummaryJobCounts (raw: unknown): SummaryJobCounts {
  const r = (raw ?? {}) as Record<string, unknown>
  return { pending: Number(r.pending ?? 0), running: Number(r.running ?? 0), failed: Number(r.failed ?? 0) }
}

/** rtb_reserve_seqs answers {from, to}. */
export function toSeqRange (value: unknown): SeqRange {
  const r = value as { from?: unknown; to?: unknown } | null
  if (typeof r?.from !== 'number' || typeof r.to !== 'number') throw new StoreError(`reserveSeqs: unexpected answer ${JSON.stringify(value)}`, false)
  return { from: r.from, to: r.to }
}

/** rtb_acquire_session answers {epoch, from, to} or {held, until}. */
export function toAcquired (value: unknown): Acquired {
  const r = value as { held?: unknown; until?: unknown; epoch?: unknown } | null
  if (typeof r?.held === 'string') return { type: 'held', instance: r.held, until: String(r.until) }
  if (typeof r?.epoch !== 'number') throw new StoreError(`acquireSession: unexpected answer ${JSON.stringify(value)}`, false)
  return { type: 'owned', epoch: r.epoch, ...toSeqRange(value) }
}

/** SQLSTATEs the rtb_* functions raise: RTB01 a stale lease epoch (fenced off), RTB02 another event under a stored seq. */
export const FENCED_SQLSTATE = 'RTB01'
export const CONFLICT_SQLSTATE = 'RTB02'
