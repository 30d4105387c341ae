/**
 * The in-memory SessionRepository: the default store (development, tests, a single demo process), and the reference
 * for the shared contract suite. It forgets: ended sessions past a count or an age are evicted, oldest first.
 */
import type { StoredEvent } from '../protocol.js'
import {
  FencedError, StoreError,
  type Acquired, type AppendEvent, type SeqRange, type SessionRecord, type SessionRepository, type SessionStatus, type SummaryJob, type SummaryJobCounts, type UserProfile
} from './types.js'

export interface MemoryStoreOptions {
  /** Clock for leases and due times (ms since epoch). */
  now?: () => number
  /** Profiles getProfile answers from; defaults to DEMO_PROFILES. */
  profiles?: UserProfile[]
  /** Ended sessions kept (MEMORY_MAX_SESSIONS); the oldest ended ones go first. Default: no bound. */
  maxEndedSessions?: number
  /** Ended sessions older than this are forgotten (MEMORY_SESSION_TTL_MS). Default: never. */
  endedTtlMs?: number
}

/** Seeded users for the user-profile tool (the SQL schema seeds the same rows). */
export const DEMO_PROFILES: readonly UserProfile[] = Object.freeze([
  { userId: 'alice', name: 'Alice Martin', email: 'alice@example.com', plan: 'pro', createdAt: '2024-01-15T09:30:00.000Z', preferences: { language: 'en', theme: 'dark', timezone: 'Europe/Paris' } },
  { userId: 'bob', name: 'Bob Chen', email: 'bob@example.com', plan: 'free', createdAt: '2024-03-02T14:05:00.000Z', preferences: { language: 'en', theme: 'light', timezone: 'America/New_York' } },
  { userId: 'demo', name: 'Demo User', email: 'demo@example.com', plan: 'team', createdAt: '2024-06-01T00:00:00.000Z', preferences: { language: 'en', theme: 'system', timezone: 'UTC' } },
  { userId: 'user-42', name: 'Grace Okafor', email: 'user-42@example.com', plan: 'enterprise', createdAt: '2023-11-20T17:45:00.000Z', preferences: { language: 'fr', theme: 'dark', timezone: 'Africa/Lagos' } }
])

const TITLE_CHARS = 120

interface Row {
  rec: SessionRecord
  startedMs: number
  /**
   * Sorted by seq; each payload kept only as its JSON text (one copy of the text, immutable, round-trips like
   * jsonb): answers parse a fresh copy that nothing here holds on to.
   */
  events: Array<{ seq: number; json: string }>
  dueAt: number
  leaseOwner: string | null
  leaseUntil: number
  attempts: number
  /** The highest seq reserved for numbering (reserveSeqs). */
  seqReserved: number
  /** The owner lease (acquireSession): instance, fencing epoch, expiry in ms (0: none). */
  lease: { instance: string | null; epoch: number; until: number }
}

/** Keyed by session id; every answer is a copy. A stateful adapter, hence the class. */
class MemoryStore implements SessionRepository {
  readonly kind = 'memory' as const
  private readonly rows = new Map<string, Row>()
  /** Sessions whose summary job is pending, so claims don't scan every session. */
  private readonly pendingJobs = new Set<string>()
  private readonly profiles: Map<string, UserProfile>
  /** Tokens by usageKey(principal, day). */
  private readonly usage = new Map<string, number>()
  /** "Always" approvals, as JSON [subject, tool]. */
  private readonly approvals = new Set<string>()
  private readonly now: () => number
  /** Ended sessions by id → when they ended, in the order they ended: the front is evicted first. Live ones are never here. */
  private readonly ended = new Map<string, number>()
  private readonly maxEnded: number
  private readonly endedTtlMs: number

  constructor (opts: MemoryStoreOptions) {
    this.now = opts.now ?? Date.now
    this.maxEnded = opts.maxEndedSessions ?? Infinity
    this.endedTtlMs = opts.endedTtlMs ?? Infinity
    this.profiles = new Map((opts.profiles ?? DEMO_PROFILES).map((p) => [p.userId, structuredClone(p)]))
  }

  async init (): Promise<void> {}
  async ping (): Promise<void> {}
  async close (): Promise<void> {}

  async appendEvents (batch: AppendEvent[]): Promise<void> {
    // Validate the whole batch first: like the SQL backends, a batch is stored entirely or not at all.
    for (const { sessionId, event, epoch } of batch) {
      validate(sessionId, event)
      const row = this.rows.get(sessionId)
      if (row === undefined) continue
      this.fence(row, epoch, 'appendEvents')
      const at = lowerBound(row.events, event.seq)
      if (row.events[at]?.seq === event.seq && row.events[at].json !== JSON.stringify(event)) {
        throw new StoreError(`appendEvents: session ${sessionId} seq ${event.seq} already holds another event`, false)
      }
    }
    for (const { sessionId, event } of batch) this.appendOne(sessionId, event)
  }

  private appendOne (sessionId: string, event: StoredEvent): void {
    let row = this.rows.get(sessionId)
    if (row === undefined) {
      row = newRow(sessionId, event.ts, null)
      this.rows.set(sessionId, row)
    }
    const { rec, events } = row
    if (event.seq > rec.lastSeq) {
      events.push({ seq: event.seq, json: JSON.stringify(event) })
      rec.lastSeq = event.seq
    } else {
      const at = lowerBound(events, event.seq)
      if (events[at]?.seq === event.seq) return // already stored: idempotent skip
      events.splice(at, 0, { seq: event.seq, json: JSON.stringify(event) })
    }
    if (rec.status === 'ended') {
      this.ended.delete(sessionId)
      rec.status = 'active'
      rec.endedAt = null
      rec.durationMs = null
    }
    if (event.type === 'user_message') {
      rec.messageCount++
      rec.openTurnId = event.turnId
      if (rec.title === null) rec.title = cut(event.content, TITLE_CHARS)
    } else if (event.type === 'assistant_message') {
      rec.messageCount++
      if (rec.openTurnId === event.turnId) rec.openTurnId = null
    }
  }

  /** Forgets ended sessions over the count or past their age, oldest first; cheap when there is nothing to do. */
  private evict (): void {
    const oldest = this.now() - this.endedTtlMs
    for (const [id, endedMs] of this.ended) {
      if (this.ended.size <= this.maxEnded && endedMs >= oldest) return
      this.ended.delete(id)
      this.rows.delete(id)
      this.pendingJobs.delete(id)
    }
  }

  async getSession (id: string): Promise<SessionRecord | null> {
    this.evict()
    const row = this.rows.get(id)
    return row === undefined ? null : { ...row.rec }
  }

  async listSessions (opts: { limit: number; before?: string; beforeId?: string; status?: SessionStatus; owner?: string }): Promise<SessionRecord[]> {
    this.evict()
    const before = opts.before === undefined ? Infinity : parseTime(opts.before, 'before')
    const { beforeId, status, owner } = opts
    const found: Row[] = []
    for (const row of this.rows.values()) {
      const afterCursor = row.startedMs < before || (beforeId !== undefined && row.startedMs === before && row.rec.id < beforeId)
      if (afterCursor && (status === undefined || row.rec.status === status) && (owner === undefined || row.rec.owner === owner)) found.push(row)
    }
    found.sort((a, b) => b.startedMs - a.startedMs || (a.rec.id < b.rec.id ? 1 : a.rec.id > b.rec.id ? -1 : 0))
    return found.slice(0, Math.max(0, opts.limit)).map((r) => ({ ...r.rec }))
  }

  async listLapsedSessions (opts: { limit: number }): Promise<SessionRecord[]> {
    this.evict()
    const now = this.now()
    const lapsed = [...this.rows.values()].filter((r) => r.rec.status === 'active' && (r.lease.instance === null || r.lease.until <= now))
    lapsed.sort((a, b) => (a.lease.instance === null ? 0 : a.lease.until) - (b.lease.instance === null ? 0 : b.lease.until) || (a.rec.id < b.rec.id ? -1 : 1))
    return lapsed.slice(0, Math.max(0, opts.limit)).map((r) => ({ ...r.rec }))
  }

  async claimSession (opts: { sessionId: string; owner: string }): Promise<string | null> {
    const { sessionId, owner } = opts
    if (typeof sessionId !== 'string' || sessionId === '') throw new StoreError('claimSession: sessionId must be a non-empty string', false)
    if (typeof owner !== 'string' || owner === '') throw new StoreError('claimSession: owner must be a non-empty string', false)
    let row = this.rows.get(sessionId)
    if (row === undefined) {
      row = newRow(sessionId, new Date(this.now()).toISOString(), owner)
      this.rows.set(sessionId, row)
    }
    return row.rec.owner
  }

  async acquireSession (opts: { sessionId: string; instanceId: string; leaseMs: number; count: number; create: boolean }): Promise<Acquired> {
    const { sessionId, instanceId, leaseMs, count, create } = opts
    if (typeof sessionId !== 'string' || sessionId === '' || typeof instanceId !== 'string' || instanceId === '') {
      throw new StoreError('acquireSession: sessionId and instanceId must be non-empty strings', false)
    }
    if (!Number.isSafeInteger(count) || count < 1 || !(leaseMs >= 1)) throw new StoreError(`acquireSession: count and leaseMs must be positive, got ${count} and ${leaseMs}`, false)
    let row = this.rows.get(sessionId)
    if (row === undefined) {
      if (!create) return { type: 'owned', epoch: 0, from: 1, to: 0 }
      row = newRow(sessionId, new Date(this.now()).toISOString(), null)
      this.rows.set(sessionId, row)
    }
    const now = this.now()
    const { lease } = row
    if (lease.instance !== null && lease.instance !== instanceId && lease.until > now) {
      return { type: 'held', instance: lease.instance, until: new Date(lease.until).toISOString() }
    }
    row.lease = { instance: instanceId, epoch: lease.epoch + 1, until: now + leaseMs }
    return { type: 'owned', epoch: row.lease.epoch, ...this.reserve(row, count) }
  }

  async reserveSeqs (opts: { sessionId: string; count: number; epoch?: number }): Promise<SeqRange> {
    const { sessionId, count, epoch } = opts
    if (!Number.isSafeInteger(count) || count < 1) throw new StoreError(`reserveSeqs: count must be a positive integer, got ${String(count)}`, false)
    const row = this.rows.get(sessionId)
    if (row === undefined) return { from: 1, to: 0 }
    this.fence(row, epoch, 'reserveSeqs')
    return this.reserve(row, count)
  }

  private reserve (row: Row, count: number): SeqRange {
    const from = Math.max(row.seqReserved, row.rec.lastSeq) + 1
    row.seqReserved = from + count - 1
    return { from, to: row.seqReserved }
  }

  private fence (row: Row, epoch: number | undefined, op: string): void {
    if (epoch !== undefined && row.lease.epoch !== epoch) throw new FencedError(`${op}: session ${row.rec.id} is owned under a newer epoch`)
  }

  async renewLeases (opts: { instanceId: string; leaseMs: number; leases: Array<{ sessionId: string; epoch: number }> }): Promise<string[]> {
    const lost: string[] = []
    for (const { sessionId, epoch } of opts.leases) {
      const row = this.rows.get(sessionId)
      if (row !== undefined && row.lease.epoch === epoch && row.lease.instance === opts.instanceId) row.lease.until = this.now() + opts.leaseMs
      else lost.push(sessionId)
    }
    return lost.sort()
  }

  async releaseSeqs (opts: { sessionId: string; used: number; epoch?: number }): Promise<void> {
    const row = this.rows.get(opts.sessionId)
    if (row === undefined || (opts.epoch !== undefined && row.lease.epoch !== opts.epoch)) return
    row.seqReserved = Math.min(row.seqReserved, Math.max(row.rec.lastSeq, opts.used))
    if (opts.epoch !== undefined) row.lease = { ...row.lease, instance: null, until: 0 }
  }

  async listEvents (sessionId: string, opts: { after: number; limit: number }): Promise<StoredEvent[]> {
    this.evict()
    const row = this.rows.get(sessionId)
    if (row === undefined || opts.limit <= 0) return []
    const from = lowerBound(row.events, opts.after + 1)
    return row.events.slice(from, from + opts.limit).map((e) => JSON.parse(e.json) as StoredEvent)
  }

  async endSession (opts: { sessionId: string; endedAt: string; epoch?: number }): Promise<boolean> {
    const row = this.rows.get(opts.sessionId)
    if (row !== undefined) this.fence(row, opts.epoch, 'endSession')
    if (row === undefined || row.rec.status !== 'active') return false
    const endedMs = parseTime(opts.endedAt, 'endedAt')
    const { rec } = row
    rec.status = 'ended'
    rec.endedAt = new Date(endedMs).toISOString()
    // A session that has events lasted some time: never report 0 (or a negative skew) as its duration.
    rec.durationMs = Math.max(1, Math.round(endedMs - row.startedMs))
    rec.version++
    rec.summaryStatus = 'pending'
    rec.summaryError = null
    row.dueAt = this.now()
    row.leaseOwner = null
    row.leaseUntil = 0
    row.attempts = 0
    this.pendingJobs.add(rec.id)
    this.ended.delete(rec.id)
    this.ended.set(rec.id, endedMs)
    this.evict()
    return true
  }

  async claimSummaryJobs (opts: { workerId: string; limit: number; leaseMs: number }): Promise<SummaryJob[]> {
    const now = this.now()
    const due: Row[] = []
    for (const id of this.pendingJobs) {
      const row = this.rows.get(id)
      if (row !== undefined && row.dueAt <= now && (row.leaseOwner === null || row.leaseUntil <= now)) due.push(row)
    }
    due.sort((a, b) => a.dueAt - b.dueAt)
    return due.slice(0, Math.max(0, opts.limit)).map((row) => {
      row.leaseOwner = opts.workerId
      row.leaseUntil = now + opts.leaseMs
      row.attempts++
      return { sessionId: row.rec.id, version: row.rec.version, attempts: row.attempts, leaseUntil: new Date(row.leaseUntil).toISOString() }
    })
  }

  /** The lease is this worker's while nobody else claimed the job, even just after leaseUntil. */
  private held (job: SummaryJob, workerId: string): Row | null {
    const row = this.rows.get(job.sessionId)
    if (row === undefined || row.rec.summaryStatus !== 'pending' || row.rec.version !== job.version) return null
    return row.leaseOwner === workerId ? row : null
  }

  async completeSummaryJob (opts: { job: SummaryJob; workerId: string; summary: string }): Promise<boolean> {
    const row = this.held(opts.job, opts.workerId)
    if (row === null) return false
    row.rec.summary = opts.summary
    row.rec.summaryStatus = 'ready'
    row.rec.summaryError = null
    this.release(row)
    return true
  }

  async failSummaryJob (opts: { job: SummaryJob; workerId: string; error: string; retryInMs: number; maxAttempts: number }): Promise<'retry' | 'failed' | 'lost'> {
    const row = this.held(opts.job, opts.workerId)
    if (row === null) return 'lost'
    row.rec.summaryError = opts.error
    if (row.attempts >= opts.maxAttempts) {
      row.rec.summaryStatus = 'failed'
      this.release(row)
      return 'failed'
    }
    row.leaseOwner = null
    row.leaseUntil = 0
    row.dueAt = this.now() + Math.max(0, opts.retryInMs)
    return 'retry'
  }

  private release (row: Row): void {
    row.leaseOwner = null
    row.leaseUntil = 0
    this.pendingJobs.delete(row.rec.id)
  }

  async summaryJobCounts (): Promise<SummaryJobCounts> {
    const now = this.now()
    const counts = { pending: 0, running: 0, failed: 0 }
    for (const id of this.pendingJobs) {
      const row = this.rows.get(id)
      if (row === undefined) continue
      if (row.leaseOwner !== null && row.leaseUntil > now) counts.running++
      else counts.pending++
    }
    for (const row of this.rows.values()) if (row.rec.summaryStatus === 'failed') counts.failed++
    return counts
  }

  async getProfile (userId: string): Promise<UserProfile | null> {
    const p = this.profiles.get(userId)
    return p === undefined ? null : structuredClone(p)
  }

  async addUsage (opts: { principal: string; day: string; tokens: number }): Promise<number> {
    const key = usageKey(opts.principal, opts.day)
    if (!Number.isSafeInteger(opts.tokens) || opts.tokens < 0) {
      throw new StoreError(`addUsage: tokens must be a non-negative integer, got ${String(opts.tokens)}`, false)
    }
    const total = (this.usage.get(key) ?? 0) + opts.tokens
    this.usage.set(key, total)
    return total
  }

  async getUsage (opts: { principal: string; day: string }): Promise<number> {
    return this.usage.get(usageKey(opts.principal, opts.day)) ?? 0
  }

  async rememberApproval (opts: { subject: string; tool: string }): Promise<void> {
    if (!opts.subject || !opts.tool) throw new StoreError('rememberApproval: subject and tool are required', false)
    this.approvals.add(JSON.stringify([opts.subject, opts.tool]))
  }

  async isApprovalRemembered (opts: { subject: string; tool: string }): Promise<boolean> {
    return this.approvals.has(JSON.stringify([opts.subject, opts.tool]))
  }
}

export function createMemoryStore (opts: MemoryStoreOptions = {}): SessionRepository {
  return new MemoryStore(opts)
}

function newRow (id: string, ts: string, owner: string | null): Row {
  const startedMs = Date.parse(ts)
  return {
    rec: {
      id, owner, status: 'active', startedAt: new Date(startedMs).toISOString(), endedAt: null, durationMs: null,
      summary: null, summaryStatus: 'none', summaryError: null, messageCount: 0, lastSeq: 0, title: null, openTurnId: null, version: 0
    },
    startedMs, events: [], dueAt: 0, leaseOwner: null, leaseUntil: 0, attempts: 0, seqReserved: 0,
    lease: { instance: null, epoch: 0, until: 0 }
  }
}

function validate (sessionId: unknown, event: StoredEvent | undefined): void {
  const bad = (why: string): never => { throw new StoreError(`invalid event for session ${String(sessionId)}: ${why}`, false) }
  if (typeof sessionId !== 'string' || sessionId === '') bad('sessionId must be a non-empty string')
  if (event === null || typeof event !== 'object') return bad('event must be an object')
  if (!Number.isSafeInteger(event.seq) || event.seq < 1) bad(`seq must be a positive integer, got ${String(event.seq)}`)
  if (typeof event.type !== 'string') bad('type must be a string')
  if (typeof event.ts !== 'string' || Number.isNaN(Date.parse(event.ts))) bad(`ts must be an ISO timestamp, got ${String(event.ts)}`)
}

/** The usage map's key; refuses what the SQL stores refuse (no principal, a day that is not a date). */
function usageKey (principal: string, day: string): string {
  if (typeof principal !== 'string' || principal === '') throw new StoreError('usage: principal must be a non-empty string', false)
  const ms = typeof day === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(day) ? Date.parse(`${day}T00:00:00Z`) : NaN
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== day) {
    throw new StoreError(`usage: day must be a YYYY-MM-DD date, got ${String(day)}`, false)
  }
  return `${day} ${principal}` // the day is fixed-width, so no two pairs share a key
}

function parseTime (iso: string, name: string): number {
  const ms = Date.parse(iso)
  if (Number.isNaN(ms)) throw new StoreError(`${name} must be an ISO timestamp, got ${iso}`, false)
  return ms
}

/** First index whose seq is >= seq. */
function lowerBound (events: Array<{ seq: number }>, seq: number): number {
  let lo = 0
  let hi = events.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (events[mid].seq < seq) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Cut by characters (code points), as Postgres left() does, so both backends give the same title. */
function cut (text: string, max: number): string {
  if (text.length <= max) return text
  return Array.from(text).slice(0, max).join('')
}
