/** The storage port: one SessionRepository interface that the memory, Postgres and Supabase stores implement. */
import type { StoredEvent } from '../protocol.js'

export type StoreKind = 'memory' | 'postgres' | 'supabase'
export type SessionStatus = 'active' | 'ended'
export type SummaryStatus = 'none' | 'pending' | 'ready' | 'failed'

/** A session row as the REST API shows it. Timestamps are ISO-8601 strings. */
export interface SessionRecord {
  id: string
  /** The principal that created the session (DESIGN §10); null when it was created while auth was off. */
  owner: string | null
  status: SessionStatus
  startedAt: string
  endedAt: string | null
  durationMs: number | null
  summary: string | null
  summaryStatus: SummaryStatus
  summaryError: string | null
  /** user_message + assistant_message events stored so far. */
  messageCount: number
  /** Highest stored seq (0 = no events). */
  lastSeq: number
  /** First user message, cut to 120 characters: the title the page's session list shows. */
  title: string | null
  /** Turn id of a user_message that has no assistant_message yet (a turn left open by a crash). */
  openTurnId: string | null
  /** Bumped by every endSession; a summary job belongs to one version. */
  version: number
}

/** One event bound for a session's log. The store keeps `event` whole as the row's payload. */
export interface AppendEvent {
  sessionId: string
  event: StoredEvent
  /** The writer's lease epoch (DESIGN §11): the store refuses the event (FencedError) once another epoch owns the session. */
  epoch?: number
}

/** Seqs reserved for numbering (DESIGN §11): `from`..`to` are this caller's; `from` − 1 is the previous mark. */
export interface SeqRange { from: number; to: number }

/**
 * What acquireSession answers: the lease (epoch 0 and nothing reserved for a session with no row, when not
 * created), or the instance that holds it live.
 */
export type Acquired =
  | { type: 'owned'; epoch: number; from: number; to: number }
  | { type: 'held'; instance: string; until: string }

/** A claimed summary job: the worker holds it until leaseUntil. */
export interface SummaryJob {
  sessionId: string
  version: number
  /** Attempts including this one. */
  attempts: number
  leaseUntil: string
}

/** The summary queue across every worker: waiting, claimed under a live lease, failed for good. */
export interface SummaryJobCounts { pending: number; running: number; failed: number }

export interface UserProfile {
  userId: string
  name: string
  email: string
  plan: string
  createdAt: string
  preferences: Record<string, unknown>
}

/** Thrown (or rejected) by a store when the backend cannot be reached or refuses; `retryable` drives the writer's backoff. */
export class StoreError extends Error {
  override name = 'StoreError'
  constructor (message: string, readonly retryable: boolean, options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** A write under a lease epoch that no longer owns the session (another instance took it over): never retried. */
export class FencedError extends StoreError {
  override name = 'FencedError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, false, options) }
}

/**
 * Every backend gives the same semantics (see DESIGN §6 and the shared contract test suite):
 * appends are idempotent on (sessionId, seq) and create the session row on first sight;
 * ending a session and queueing its summary job is one atomic step; a job is claimed by one
 * worker at a time under a lease, and completed at most once per session version.
 */
export interface SessionRepository {
  readonly kind: StoreKind
  /** Connects and checks the schema; throws a StoreError saying what is missing. */
  init (): Promise<void>
  /** Cheap liveness probe for /health. */
  ping (): Promise<void>
  close (): Promise<void>

  /**
   * Stores a batch (possibly spanning sessions) in one round trip. Creates missing session rows
   * (status active, startedAt = first event's ts); appending to an ended session makes it active
   * again. Idempotent: an event whose (sessionId, seq) is already stored is skipped.
   * Maintains lastSeq, messageCount, title and openTurnId.
   */
  appendEvents (batch: AppendEvent[]): Promise<void>
  getSession (id: string): Promise<SessionRecord | null>
  /**
   * Most recent first (by startedAt, then id). `before` (a startedAt ISO time) starts the page after that
   * time; with `beforeId` too it starts right after that session, so sessions that started in the same
   * millisecond are never skipped between pages.
   */
  listSessions (opts: { limit: number; before?: string; beforeId?: string; status?: SessionStatus; owner?: string }): Promise<SessionRecord[]>
  /**
   * Active sessions no instance holds: their owner lease expired or was given back (DESIGN §11), the oldest lapse
   * first. The takeover sweep of every instance takes these, so a dead instance's sessions end even with no socket.
   */
  listLapsedSessions (opts: { limit: number }): Promise<SessionRecord[]>
  /**
   * The owner on record for a session, creating the session row (status active, no events) owned by `owner`
   * when it does not exist. Never changes an existing row: a session created while auth was off keeps a null
   * owner. Atomic: two principals claiming one new id at once get the same answer.
   */
  claimSession (opts: { sessionId: string; owner: string }): Promise<string | null>
  /**
   * Takes the session's owner lease (DESIGN §11) when nobody holds it, it expired, or `instanceId` holds it; each
   * acquisition bumps the epoch (the fencing token every write then carries), and reserves the next `count` seqs
   * for numbering, ahead of anything sent under them, past both the previous reservation and the highest stored
   * seq (no seq is ever reused, also after a crash), durably before this resolves. Creates the session row
   * (active, no events, owner null) when it is new; with `create: false` a new session gets no row, epoch 0 and
   * nothing reserved ({from: 1, to: 0}).
   */
  acquireSession (opts: { sessionId: string; instanceId: string; leaseMs: number; count: number; create: boolean }): Promise<Acquired>
  /** The next `count` seqs, for the owner under `epoch` (FencedError when another epoch owns it); no row: {from: 1, to: 0}. */
  reserveSeqs (opts: { sessionId: string; count: number; epoch?: number }): Promise<SeqRange>
  /** Extends the leases `instanceId` holds under these epochs by leaseMs; answers the session ids it no longer holds. */
  renewLeases (opts: { instanceId: string; leaseMs: number; leases: Array<{ sessionId: string; epoch: number }> }): Promise<string[]>
  /**
   * Gives back what was reserved above `used` (the highest seq numbered, all of them stored), never going below
   * the highest stored seq, so the next visit numbers on without a gap. With `epoch`: only while that epoch owns
   * the session, and the lease is let go as well. Unknown session: nothing happens.
   */
  releaseSeqs (opts: { sessionId: string; used: number; epoch?: number }): Promise<void>
  /** Events with seq > after, ascending, at most limit. */
  listEvents (sessionId: string, opts: { after: number; limit: number }): Promise<StoredEvent[]>

  /**
   * Ends an active session: endedAt, durationMs = endedAt − startedAt, version + 1, summary
   * status pending with the job due now — atomically. Returns false when the session is unknown
   * or already ended (no new job). With `epoch`: FencedError when another epoch owns the session.
   */
  endSession (opts: { sessionId: string; endedAt: string; epoch?: number }): Promise<boolean>
  /** Claims up to `limit` due jobs (pending, due, lease free or expired) for `leaseMs`, incrementing attempts. */
  claimSummaryJobs (opts: { workerId: string; limit: number; leaseMs: number }): Promise<SummaryJob[]>
  /** Stores the summary if this worker still holds the lease on this version; false otherwise. */
  completeSummaryJob (opts: { job: SummaryJob; workerId: string; summary: string }): Promise<boolean>
  /**
   * Records a failed attempt: due again after retryInMs, or status failed (error kept) once
   * attempts reached maxAttempts. 'lost' when the lease was no longer this worker's.
   */
  failSummaryJob (opts: { job: SummaryJob; workerId: string; error: string; retryInMs: number; maxAttempts: number }): Promise<'retry' | 'failed' | 'lost'>

  getProfile (userId: string): Promise<UserProfile | null>
  /** The summary queue's counts (the rtb_summary_jobs gauge, read at scrape time). */
  summaryJobCounts (): Promise<SummaryJobCounts>

  /** Adds tokens to a principal's count for one UTC day (`YYYY-MM-DD`) atomically; returns the new total. */
  addUsage (opts: { principal: string; day: string; tokens: number }): Promise<number>
  /** A principal's token count for one UTC day; 0 when none was recorded. */
  getUsage (opts: { principal: string; day: string }): Promise<number>

  /**
   * Remembers a `scope: "always"` approval (DESIGN §13): `subject` (a principal, or `session:<id>` with auth off)
   * is not asked again before calling `tool`. Idempotent.
   */
  rememberApproval (opts: { subject: string; tool: string }): Promise<void>
  /** Whether `subject` chose "always" for `tool`. */
  isApprovalRemembered (opts: { subject: string; tool: string }): Promise<boolean>
}
