/** SessionRepository through @supabase/supabase-js: every operation is one supabase.rpc() of an rtb_* function. */
import { createClient } from '@supabase/supabase-js'
import ws from 'ws'
import type { Logger } from '../logger.js'
import {
  appendEventsJson, checkSchemaVersion, pgText, toEvents, toProfile, toSessionRecord, toSessionRecords, toAcquired, toSeqRange, toSummaryJob,
  toSummaryJobCounts, toUsage, FENCED_SQLSTATE
} from './sql-codec.js'
import { FencedError, StoreError, type SessionRepository } from './types.js'

export interface SupabaseStoreOptions {
  url: string
  serviceRoleKey: string
  logger: Logger
  /** Replaces global fetch (tests, proxies). */
  fetch?: typeof fetch
  /** Bound on one PostgREST call. Default 15 s, like the Postgres store's query timeout. */
  requestTimeoutMs?: number
}

const SCHEMA_HELP = 'run supabase-schema.sql in the Supabase SQL editor (or psql -v ON_ERROR_STOP=1 -f supabase-schema.sql), ' +
  "then reload the API schema cache (NOTIFY pgrst, 'reload schema')"

/** What PostgREST and supabase-js report in `error`, plus the HTTP status. Kept whole as the StoreError's cause. */
export interface SupabaseErrorCause { code: string; message: string; details: string | null; hint: string | null; status: number }

interface ClaimRow { session_id: string; version: number; attempts: number; lease_until: string }

export function createSupabaseStore (opts: SupabaseStoreOptions): SessionRepository {
  const log = opts.logger.child({ store: 'supabase' })
  const client = createClient(opts.url, opts.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    // Node 20 has no global WebSocket: supabase-js refuses to start without a transport, though we never subscribe.
    realtime: { transport: ws as unknown as NonNullable<NonNullable<Parameters<typeof createClient>[2]>['realtime']>['transport'] },
    // Every call is bounded: a blackholed endpoint must fail the call (and the writer retries), not hang it.
    global: { fetch: withTimeout(opts.fetch ?? fetch, opts.requestTimeoutMs ?? 15_000) }
  })
  let closed = false

  async function rpc<T> (op: string, fn: string, args: Record<string, unknown> = {}): Promise<T> {
    if (closed) throw new StoreError(`supabase store is closed (${op})`, false)
    let res: { data: unknown; error: unknown; status: number }
    try {
      res = await client.rpc(fn, args)
    } catch (err) {
      // supabase-js reports network failures in `error`; a throw here is something it did not expect.
      throw new StoreError(`supabase unreachable during ${op}: ${String(err)}`, true, { cause: err })
    }
    if (res.error) {
      const storeErr = toStoreError(res.error, res.status, op)
      log.debug({ op, retryable: storeErr.retryable, err: storeErr.message }, 'supabase call failed')
      throw storeErr
    }
    return res.data as T
  }

  return {
    kind: 'supabase',

    async init () {
      let version: number
      try {
        version = await rpc<number>('init', 'rtb_schema_version')
      } catch (err) {
        const cause = (err as StoreError).cause as SupabaseErrorCause | undefined
        if (cause?.code === 'PGRST202' || cause?.code === '42883') {
          throw new StoreError(`schema missing: rtb_schema_version() not found; ${SCHEMA_HELP}`, false, { cause })
        }
        if (cause?.status === 401 || cause?.status === 403) {
          throw new StoreError(`SUPABASE_SERVICE_ROLE_KEY was refused (${cause.status}): use the project's service-role key`, false, { cause })
        }
        throw err
      }
      checkSchemaVersion(version, SCHEMA_HELP)
      log.info({ schemaVersion: version }, 'supabase store ready')
    },

    async ping () { await rpc('ping', 'rtb_schema_version') },

    async close () {
      closed = true
      await client.removeAllChannels()
    },

    async appendEvents (batch) {
      if (batch.length === 0) return
      await rpc('appendEvents', 'rtb_append_events', { p_events: JSON.parse(appendEventsJson(batch)) })
    },

    async getSession (id) {
      return toSessionRecord(await rpc('getSession', 'rtb_get_session', { p_id: id }))
    },

    async listSessions ({ limit, before, beforeId, status, owner }) {
      // Every argument is sent, null included: PostgREST picks the function by its argument names.
      return toSessionRecords(await rpc('listSessions', 'rtb_list_sessions', {
        p_limit: limit, p_before: before ?? null, p_status: status ?? null, p_before_id: beforeId ?? null, p_owner: owner ?? null
      }))
    },

    async listLapsedSessions ({ limit }) {
      return toSessionRecords(await rpc('listLapsedSessions', 'rtb_list_lapsed_sessions', { p_limit: limit }))
    },

    async claimSession ({ sessionId, owner }) {
      return await rpc<string | null>('claimSession', 'rtb_claim_session', { p_session_id: sessionId, p_owner: owner }) ?? null
    },

    async acquireSession ({ sessionId, instanceId, leaseMs, count, create }) {
      return toAcquired(await rpc('acquireSession', 'rtb_acquire_session', {
        p_session_id: sessionId, p_instance: instanceId, p_lease_ms: Math.round(leaseMs), p_count: count, p_create: create
      }))
    },

    async reserveSeqs ({ sessionId, count, epoch }) {
      return toSeqRange(await rpc('reserveSeqs', 'rtb_reserve_seqs', { p_session_id: sessionId, p_count: count, p_epoch: epoch ?? null }))
    },

    async renewLeases ({ instanceId, leaseMs, leases }) {
      if (leases.length === 0) return []
      return await rpc<string[]>('renewLeases', 'rtb_renew_leases', {
        p_instance: instanceId, p_lease_ms: Math.round(leaseMs), p_leases: leases.map((l) => ({ session_id: l.sessionId, epoch: l.epoch }))
      })
    },

    async releaseSeqs ({ sessionId, used, epoch }) {
      await rpc('releaseSeqs', 'rtb_release_seqs', { p_session_id: sessionId, p_used: used, p_epoch: epoch ?? null })
    },

    async listEvents (sessionId, { after, limit }) {
      return toEvents(await rpc('listEvents', 'rtb_list_events', { p_session_id: sessionId, p_after: after, p_limit: limit }))
    },

    async endSession ({ sessionId, endedAt, epoch }) {
      return await rpc<boolean>('endSession', 'rtb_end_session', { p_session_id: sessionId, p_ended_at: endedAt, p_epoch: epoch ?? null }) === true
    },

    async claimSummaryJobs ({ workerId, limit, leaseMs }) {
      const rows = await rpc<ClaimRow[] | null>('claimSummaryJobs', 'rtb_claim_summary_jobs',
        { p_worker: workerId, p_limit: limit, p_lease_ms: leaseMs })
      return (rows ?? []).map(toSummaryJob)
    },

    async completeSummaryJob ({ job, workerId, summary }) {
      return await rpc<boolean>('completeSummaryJob', 'rtb_complete_summary_job',
        { p_session_id: job.sessionId, p_version: job.version, p_worker: workerId, p_summary: pgText(summary) }) === true
    },

    async failSummaryJob ({ job, workerId, error, retryInMs, maxAttempts }) {
      return await rpc<'retry' | 'failed' | 'lost'>('failSummaryJob', 'rtb_fail_summary_job', {
        p_session_id: job.sessionId,
        p_version: job.version,
        p_worker: workerId,
        p_error: pgText(error),
        p_retry_in_ms: Math.round(retryInMs),
        p_max_attempts: maxAttempts
      })
    },

    async getProfile (userId) {
      return toProfile(await rpc('getProfile', 'rtb_get_profile', { p_user_id: userId }))
    },

    async summaryJobCounts () {
      return toSummaryJobCounts(await rpc('summaryJobCounts', 'rtb_summary_job_counts'))
    },

    async addUsage ({ principal, day, tokens }) {
      return toUsage(await rpc('addUsage', 'rtb_add_usage', { p_principal: principal, p_day: day, p_tokens: tokens }))
    },

    async getUsage ({ principal, day }) {
      return toUsage(await rpc('getUsage', 'rtb_get_usage', { p_principal: principal, p_day: day }))
    },

    async rememberApproval ({ subject, tool }) {
      await rpc('rememberApproval', 'rtb_remember_approval', { p_subject: pgText(subject), p_tool: pgText(tool) })
    },

    async isApprovalRemembered ({ subject, tool }) {
      return await rpc<boolean>('isApprovalRemembered', 'rtb_is_approval_remembered', { p_subject: pgText(subject), p_tool: pgText(tool) }) === true
    }
  }
}

/** status 0 (fetch failed), 5xx (503 PGRST00x: database unreachable), 408 and 429 are worth retrying. */
function toStoreError (error: unknown, status: number, op: string): StoreError {
  const e = (error ?? {}) as Partial<SupabaseErrorCause>
  const cause: SupabaseErrorCause = {
    code: e.code ?? '', message: e.message ?? 'unknown error', details: e.details ?? null, hint: e.hint ?? null, status
  }
  if (cause.code === FENCED_SQLSTATE) return new FencedError(`fenced off during ${op}: ${cause.message}`, { cause })
  const retryable = status === 0 || status >= 500 || status === 408 || status === 429
  const code = cause.code ? ` ${cause.code}` : ''
  return retryable
    ? new StoreError(`supabase unavailable during ${op} (HTTP ${status}${code}): ${cause.message}`, true, { cause })
    : new StoreError(`supabase error during ${op} (HTTP ${status}${code}): ${cause.message}`, false, { cause })
}

function withTimeout (inner: typeof fetch, ms: number): typeof fetch {
  return (input, init) => {
    const timeout = AbortSignal.timeout(ms)
    return inner(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout })
  }
}
