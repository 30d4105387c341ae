/** SessionRepository over any Postgres (Supabase's connection string included): each method is one call of an rtb_* SQL function. */
import pg from 'pg'
import type { Logger } from '../logger.js'
import { toStoreError } from './pg-errors.js'
import {
  SCHEMA_HINT, appendEventsJson, checkSchemaVersion, pgText, toEvents, toProfile, toSessionRecord, toSessionRecords, toAcquired, toSeqRange, toSummaryJob,
  toSummaryJobCounts, toUsage
} from './sql-codec.js'
import { StoreError, type SessionRepository } from './types.js'

export interface PostgresStoreOptions {
  connectionString: string
  poolMax: number
  logger: Logger
  /** Server-side statement_timeout (startup parameter). Leave unset behind poolers that refuse startup options. */
  statementTimeoutMs?: number
  /** Client-side bound on one call, so a dead connection fails the call instead of hanging it. Default 15 s. */
  queryTimeoutMs?: number
  /** Bound on getting a connection. Default 5 s. */
  connectionTimeoutMs?: number
}

interface ClaimRow { session_id: string; version: number; attempts: number; lease_until: Date }

export function createPostgresStore (opts: PostgresStoreOptions): SessionRepository {
  const log = opts.logger.child({ store: 'postgres' })
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.poolMax,
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    query_timeout: opts.queryTimeoutMs ?? 15_000,
    ...(opts.statementTimeoutMs ? { statement_timeout: opts.statementTimeoutMs } : {}),
    application_name: 'realtime-ai-backend'
  })
  // An idle client whose server went away emits here; without a listener it would crash the process.
  pool.on('error', (err) => { log.warn({ err: err.message }, 'idle postgres connection dropped') })
  let closed = false

  async function call<R extends pg.QueryResultRow> (op: string, text: string, values: unknown[] = []): Promise<R[]> {
    if (closed) throw new StoreError(`postgres store is closed (${op})`, false)
    try {
      // Unnamed (unprepared) statements only: works through transaction-mode poolers such as Supavisor.
      const res = await pool.query<R>(text, values)
      return res.rows
    } catch (err) {
      const storeErr = toStoreError(err, op)
      log.debug({ op, retryable: storeErr.retryable, err: storeErr.message }, 'postgres call failed')
      throw storeErr
    }
  }
  const one = async <T>(op: string, text: string, values: unknown[] = []): Promise<T> =>
    (await call<{ r: T }>(op, text, values))[0]?.r as T

  return {
    kind: 'postgres',

    async init () {
      let version: number
      try {
        version = await one<number>('init', 'select public.rtb_schema_version() as r')
      } catch (err) {
        const cause = err instanceof StoreError ? err.cause : err
        if ((cause as { code?: string } | undefined)?.code === '42883') {
          throw new StoreError(`schema missing: ${SCHEMA_HINT}`, false, { cause })
        }
        throw err
      }
      checkSchemaVersion(version, SCHEMA_HINT)
      log.info({ schemaVersion: version }, 'postgres store ready')
    },

    async ping () { await call('ping', 'select 1') },

    async close () {
      if (closed) return
      closed = true
      await pool.end()
    },

    async appendEvents (batch) {
      if (batch.length === 0) return
      await call('appendEvents', 'select public.rtb_append_events($1::jsonb) as r', [appendEventsJson(batch)])
    },

    async getSession (id) {
      return toSessionRecord(await one('getSession', 'select public.rtb_get_session($1::text) as r', [id]))
    },

    async listSessions ({ limit, before, beforeId, status, owner }) {
      return toSessionRecords(await one('listSessions',
        'select public.rtb_list_sessions($1::int, $2::timestamptz, $3::text, $4::text, $5::text) as r',
        [limit, before ?? null, status ?? null, beforeId ?? null, owner ?? null]))
    },

    async listLapsedSessions ({ limit }) {
      return toSessionRecords(await one('listLapsedSessions', 'select public.rtb_list_lapsed_sessions($1::int) as r', [limit]))
    },

    async claimSession ({ sessionId, owner }) {
      return await one<string | null>('claimSession', 'select public.rtb_claim_session($1::text, $2::text) as r', [sessionId, owner]) ?? null
    },

    async acquireSession ({ sessionId, instanceId, leaseMs, count, create }) {
      return toAcquired(await one('acquireSession', 'select public.rtb_acquire_session($1::text, $2::text, $3::int, $4::int, $5::boolean) as r',
        [sessionId, instanceId, Math.round(leaseMs), count, create]))
    },

    async reserveSeqs ({ sessionId, count, epoch }) {
      return toSeqRange(await one('reserveSeqs', 'select public.rtb_reserve_seqs($1::text, $2::int, $3::int) as r', [sessionId, count, epoch ?? null]))
    },

    async renewLeases ({ instanceId, leaseMs, leases }) {
      if (leases.length === 0) return []
      return await one<string[]>('renewLeases', 'select public.rtb_renew_leases($1::text, $2::int, $3::jsonb) as r',
        [instanceId, Math.round(leaseMs), JSON.stringify(leases.map((l) => ({ session_id: l.sessionId, epoch: l.epoch })))])
    },

    async releaseSeqs ({ sessionId, used, epoch }) {
      await call('releaseSeqs', 'select public.rtb_release_seqs($1::text, $2::int, $3::int)', [sessionId, used, epoch ?? null])
    },

    async listEvents (sessionId, { after, limit }) {
      return toEvents(await one('listEvents',
        'select public.rtb_list_events($1::text, $2::int, $3::int) as r', [sessionId, after, limit]))
    },

    async endSession ({ sessionId, endedAt, epoch }) {
      return await one<boolean>('endSession',
        'select public.rtb_end_session($1::text, $2::timestamptz, $3::int) as r', [sessionId, endedAt, epoch ?? null]) === true
    },

    async claimSummaryJobs ({ workerId, limit, leaseMs }) {
      const rows = await call<ClaimRow>('claimSummaryJobs',
        'select session_id, version, attempts, lease_until from public.rtb_claim_summary_jobs($1::text, $2::int, $3::int)',
        [workerId, limit, leaseMs])
      return rows.map(toSummaryJob)
    },

    async completeSummaryJob ({ job, workerId, summary }) {
      return await one<boolean>('completeSummaryJob',
        'select public.rtb_complete_summary_job($1::text, $2::int, $3::text, $4::text) as r',
        [job.sessionId, job.version, workerId, pgText(summary)]) === true
    },

    async failSummaryJob ({ job, workerId, error, retryInMs, maxAttempts }) {
      return await one<'retry' | 'failed' | 'lost'>('failSummaryJob',
        'select public.rtb_fail_summary_job($1::text, $2::int, $3::text, $4::text, $5::int, $6::int) as r',
        [job.sessionId, job.version, workerId, pgText(error), Math.round(retryInMs), maxAttempts])
    },

    async getProfile (userId) {
      return toProfile(await one('getProfile', 'select public.rtb_get_profile($1::text) as r', [userId]))
    },

    async summaryJobCounts () {
      return toSummaryJobCounts(await one('summaryJobCounts', 'select public.rtb_summary_job_counts() as r'))
    },

    async addUsage ({ principal, day, tokens }) {
      return toUsage(await one('addUsage', 'select public.rtb_add_usage($1::text, $2::date, $3::bigint) as r', [principal, day, tokens]))
    },

    async getUsage ({ principal, day }) {
      return toUsage(await one('getUsage', 'select public.rtb_get_usage($1::text, $2::date) as r', [principal, day]))
    },

    async rememberApproval ({ subject, tool }) {
      await one('rememberApproval', 'select public.rtb_remember_approval($1::text, $2::text) as r', [pgText(subject), pgText(tool)])
    },

    async isApprovalRemembered ({ subject, tool }) {
      return await one<boolean>('isApprovalRemembered', 'select public.rtb_is_approval_remembered($1::text, $2::text) as r', [pgText(subject), pgText(tool)]) === true
    }
  }
}
