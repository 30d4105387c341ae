/** The live sessions: loads a session on its first socket, runs the disconnect grace, ends sessions, shuts down. */
import { errorFrame } from '../errors.js'
import { CloseCode } from '../protocol.js'
import type { SessionRepository } from '../store/types.js'
import { EventLog } from './event-log.js'
import type { Peer } from './peer.js'
import { ChatSession, SEQ_BLOCK, type SessionDeps } from './session.js'
import { settlesWithin } from '../settles.js'

export interface HubDeps extends SessionDeps {
  store: SessionRepository
  /** Called once a session's end (and its summary job) is stored. */
  onSessionEnded: (sessionId: string) => void
  /** Sessions a client address brings to life per minute (MAX_NEW_SESSIONS_PER_IP_PER_MIN): 0 when allowed, else the ms to wait. */
  takeNewSessionToken?: (address: string) => Promise<number>
}

/** A guess for `retryAfterMs` when the server holds MAX_LIVE_SESSIONS: about one disconnect grace plus a turn. */
const FULL_RETRY_MS = 15_000

interface LiveEntry {
  loading: Promise<ChatSession>
  session?: ChatSession
  graceTimer?: NodeJS.Timeout
  ending?: Promise<void>
}

const PAGE = 1_000

/** The session's lease is held by another live instance (DESIGN §11). */
export class HeldElsewhere extends Error {
  constructor (readonly instance: string, readonly until: string) { super(`the session is live on instance ${instance}`) }
}

/** Past a held lease's expiry, recovery looks again this much later (clock skew between instances and the database). */
const RECHECK_MARGIN_MS = 500

export class SessionHub {
  private readonly live = new Map<string, LiveEntry>()
  private accepting = true
  private renewTimer: NodeJS.Timeout | undefined
  private renewing = false
  private readonly rechecks = new Set<NodeJS.Timeout>()

  constructor (private readonly deps: HubDeps) {}

  get liveCount (): number { return this.live.size }

  /** Turns running now (read at scrape time: a walk over the live sessions, nothing counted on the way). */
  /** Turns running now: holding the model (a queued turn waits, it does not run). */
  get runningTurns (): number {
    let n = 0
    for (const entry of this.live.values()) if (entry.session?.turnRunning) n++
    return n
  }

  /** The live session with this id once it is loaded (diagnostics and tests). */
  session (sessionId: string): ChatSession | undefined { return this.live.get(sessionId)?.session }

  /**
   * Attaches a socket; resolves to null when the socket was refused (and closed) instead. With a `principal`
   * (auth on) the session must be that principal's: a new id becomes theirs, another's is refused 4403 before
   * anything of it is read.
   */
  async attach ({ sessionId, after, peer, principal }: { sessionId: string; after?: number; peer: Peer; principal?: string }): Promise<ChatSession | null> {
    const { config, takeNewSessionToken } = this.deps
    if (!this.live.has(sessionId)) {
      // Checked before anything of the session is read or claimed: a refused socket leaves no trace.
      if (this.live.size >= config.MAX_LIVE_SESSIONS) return this.refuseFull(peer)
      const waitMs = peer.address !== undefined && takeNewSessionToken ? await takeNewSessionToken(peer.address) : 0
      if (waitMs > 0) {
        return this.refuse(peer, 'rate_limited', `too many new sessions from this address; retry in ${Math.ceil(waitMs / 1000)} s`, CloseCode.tryAgainLater, { retryAfterMs: waitMs })
      }
    }
    // Lines about this socket carry its context (connection, principal, client) when the route gave it one.
    const log = peer.log ?? this.deps.logger.child({ sessionId })
    let owner: string | null = null
    if (principal !== undefined) {
      try {
        owner = this.live.get(sessionId)?.session?.owner ?? await this.deps.store.claimSession({ sessionId, owner: principal })
      } catch (err) {
        log.warn({ err }, 'could not read the session owner')
        return this.refuse(peer, 'store_unavailable', 'storage is unavailable; reconnect shortly', CloseCode.tryAgainLater)
      }
      if (owner !== principal) {
        peer.close(CloseCode.forbidden, 'this session belongs to another user')
        return null
      }
    }
    // A session can end (grace 0) or be mid-end while we wait: then wait for that and load it afresh.
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = this.live.get(sessionId)
      if (current?.ending && !(await settlesWithin(current.ending, config.DURABLE_WAIT_MS))) {
        return this.refuse(peer, 'store_unavailable', 'the previous visit of this session is still being stored; reconnect shortly', CloseCode.tryAgainLater)
      }
      if (!this.accepting) return this.refuse(peer, 'internal_error', 'server is restarting', CloseCode.restarting)
      // Checked again where the session comes to life: sockets that passed the first check together, then waited
      // (for the owner's claim, say), must not all load one (60 at once held 23 live sessions under a limit of 5).
      if (!this.live.has(sessionId) && this.live.size >= config.MAX_LIVE_SESSIONS) return this.refuseFull(peer)
      const entry = this.live.get(sessionId) ?? this.load(sessionId, owner)
      let session: ChatSession
      try {
        session = await entry.loading
      } catch (err) {
        if (err instanceof HeldElsewhere) {
          log.info({ holder: err.instance }, 'session is live on another instance')
          return this.refuse(peer, 'busy_server', 'this session is live on another server instance; reconnect shortly', CloseCode.tryAgainLater, { retryAfterMs: 1_000 })
        }
        log.warn({ err }, 'could not load session')
        return this.refuse(peer, 'store_unavailable', 'storage is unavailable; reconnect shortly', CloseCode.tryAgainLater)
      }
      if (this.live.get(sessionId) !== entry || entry.ending) continue
      if (!this.accepting) return this.refuse(peer, 'internal_error', 'server is restarting', CloseCode.restarting)
      if (!peer.open) {
        // The socket left while the session loaded: without a grace the session would stay live forever.
        this.startGrace(sessionId)
        return null
      }
      if (session.socketCount >= config.MAX_SOCKETS_PER_SESSION) {
        return this.refuse(peer, 'too_many_sockets', `at most ${config.MAX_SOCKETS_PER_SESSION} sockets per session`, CloseCode.tryAgainLater)
      }
      clearTimeout(entry.graceTimer)
      entry.graceTimer = undefined
      let joined: boolean
      try {
        joined = await session.attach(peer, after)
      } catch (err) {
        log.warn({ err }, 'could not read the replay from the store')
        this.startGrace(sessionId)
        return this.refuse(peer, 'store_unavailable', 'storage is unavailable to replay this session; reconnect shortly', CloseCode.tryAgainLater)
      }
      if (!joined) {
        this.startGrace(sessionId)
        return null
      }
      if (!this.accepting) {
        // Shut down while this socket caught up from the store: shutdown closed the others already.
        this.detach(session, peer, 'server restarting')
        peer.close(CloseCode.restarting, 'server restarting')
        return null
      }
      return session
    }
    return this.refuse(peer, 'internal_error', 'the session is being ended; reconnect', CloseCode.tryAgainLater)
  }

  /** Detaches a socket; the last one out starts the disconnect grace. */
  detach (session: ChatSession, peer: Peer, reason: string): void {
    if (session.detach(peer, reason)) this.startGrace(session.id)
  }

  /**
   * After a restart: every session the store still has active gets the grace, so it ends if nobody
   * returns (and an open turn is closed as interrupted). Runs one session at a time in the background.
   */
  async recover ({ pageSize = 500 }: { pageSize?: number } = {}): Promise<number> {
    let found = 0
    let cursor: { before: string; beforeId: string } | undefined
    while (this.accepting) {
      // Paged by (startedAt, id): sessions that end meanwhile do not shift the pages.
      const page = await this.deps.store.listSessions({ limit: pageSize, status: 'active', ...cursor })
      found += page.length
      for (const record of page) {
        if (!this.accepting) break
        if (this.live.has(record.id)) continue
        const entry = this.load(record.id, record.owner)
        try {
          await entry.loading
          this.startGrace(record.id)
        } catch (err) {
          // Another instance holds it: not ours to recover while it lives. Its lease is looked at once more when it
          // ends: a run that died (SIGKILL, under another INSTANCE_ID) leaves leases nobody renews.
          if (err instanceof HeldElsewhere) this.recheckAfter(record.id, record.owner, err.until)
          else this.deps.logger.warn({ err, sessionId: record.id }, 'could not recover session')
        }
      }
      const last = page.at(-1)
      if (page.length < pageSize || !last) break
      cursor = { before: last.startedAt, beforeId: last.id }
    }
    return found
  }

  /** Recovers a session whose lease another instance held at start-up, once that lease lapsed unless it was renewed. */
  private recheckAfter (sessionId: string, owner: string | null, until: string): void {
    const waitMs = Math.max(0, Date.parse(until) - Date.now()) + RECHECK_MARGIN_MS
    const timer = setTimeout(() => {
      this.rechecks.delete(timer)
      if (!this.accepting || this.live.has(sessionId)) return
      const entry = this.load(sessionId, owner)
      entry.loading.then(() => {
        this.deps.logger.info({ sessionId }, 'recovered a session whose owner stopped renewing its lease')
        this.startGrace(sessionId)
      }, (err: unknown) => {
        if (!(err instanceof HeldElsewhere)) this.deps.logger.warn({ err, sessionId }, 'could not recover session')
      })
    }, waitMs)
    timer.unref()
    this.rechecks.add(timer)
  }

  /** Stops accepting, closes running turns as interrupted, closes every socket with 1012. */
  async shutdown (): Promise<void> {
    this.accepting = false
    for (const timer of this.rechecks) clearTimeout(timer)
    this.rechecks.clear()
    const { DURABLE_WAIT_MS } = this.deps.config
    await Promise.all([...this.live.values()].map(async (entry) => {
      clearTimeout(entry.graceTimer)
      // A session still loading from a store that is down must not hold shutdown: its sockets are refused by attach.
      if (!(await settlesWithin(entry.loading, DURABLE_WAIT_MS))) return
      const session = await entry.loading.catch(() => null)
      if (!session) return
      await session.stopTurn('interrupted')
      session.closeAll(CloseCode.restarting, 'server restarting')
    }))
  }

  /**
   * After the writer flushed at shutdown: gives back each live session's unused reserved seqs, so a clean
   * restart leaves no gap (only a crash does).
   */
  /** Stops renewing leases (shutdown, after the release): what is left lapses within SESSION_LEASE_MS. */
  stopRenewing (): void { clearInterval(this.renewTimer) }

  async releaseSeqs (): Promise<void> {
    await Promise.all([...this.live.values()].map(async (entry) => { if (entry.session) await this.releaseSeqsOf(entry.session) }))
  }

  private async releaseSeqsOf (session: ChatSession): Promise<void> {
    try {
      if (session.steppedDown) return
      await this.deps.store.releaseSeqs({ sessionId: session.id, used: session.storedSeq, ...(session.epoch > 0 ? { epoch: session.epoch } : {}) })
    } catch (err) {
      // Harmless: the next visit numbers past the reservation, a gap where nothing was sent.
      this.deps.logger.warn({ err, sessionId: session.id }, 'could not release reserved seqs')
    }
  }

  private load (sessionId: string, owner: string | null): LiveEntry {
    const entry: LiveEntry = {
      // The lease first: a session another live instance owns is not read, let alone touched (DESIGN §11).
      loading: this.acquire(sessionId).then(async (lease) => {
        const log = await this.readLog(sessionId)
        // Seqs a run that died had reserved may have reached clients: numbering goes on past them (DESIGN §11).
        // A new session takes its lease on its first event (no row for a socket that leaves before that).
        log.skipTo(lease.from - 1)
        const session = new ChatSession(sessionId, owner, log, this.deps, { epoch: lease.epoch, reservedTo: lease.to, onFenced: (s) => { this.forget(s) } })
        session.closeOrphanTurn()
        entry.session = session
        return session
      })
    }
    entry.loading.catch(() => { if (this.live.get(sessionId) === entry) this.live.delete(sessionId) })
    this.live.set(sessionId, entry)
    return entry
  }

  private async acquire (sessionId: string): Promise<{ epoch: number; from: number; to: number }> {
    const { config, store } = this.deps
    const got = await store.acquireSession({ sessionId, instanceId: config.INSTANCE_ID, leaseMs: config.SESSION_LEASE_MS, count: SEQ_BLOCK, create: false })
    if (got.type === 'held') throw new HeldElsewhere(got.instance, got.until)
    this.startRenewing()
    return got
  }

  /** Renews the leases of every loaded session a few times per SESSION_LEASE_MS; a lease found lost steps its session down. */
  private startRenewing (): void {
    if (this.renewTimer !== undefined) return
    const { config, store, logger } = this.deps
    this.renewTimer = setInterval(() => {
      if (this.renewing) return
      const sessions = new Map<string, ChatSession>()
      for (const entry of this.live.values()) if (entry.session && entry.session.epoch > 0) sessions.set(entry.session.id, entry.session)
      if (sessions.size === 0) return
      this.renewing = true
      store.renewLeases({ instanceId: config.INSTANCE_ID, leaseMs: config.SESSION_LEASE_MS, leases: [...sessions.values()].map((s) => ({ sessionId: s.id, epoch: s.epoch })) })
        .then((lost) => { for (const id of lost) sessions.get(id)?.stepDown('its lease was taken over') })
        .catch((err: unknown) => { logger.warn({ err, sessions: sessions.size }, 'could not renew session leases') })
        .finally(() => { this.renewing = false })
    }, Math.max(100, Math.floor(config.SESSION_LEASE_MS / 3)))
    this.renewTimer.unref()
  }

  /** A writer refusal said another instance owns this session now. */
  fenced (sessionId: string): void {
    this.live.get(sessionId)?.session?.stepDown('the store refused its epoch')
  }

  /** A session that stepped down leaves the live map without an end: its new owner ends it. */
  private forget (session: ChatSession): void {
    const entry = this.live.get(session.id)
    if (entry?.session !== session) return
    clearTimeout(entry.graceTimer)
    this.live.delete(session.id)
  }

  /** The whole stored log is read (for the clientIds and open turns); only the most recent events stay in memory. */
  private async readLog (sessionId: string): Promise<EventLog> {
    const log = new EventLog(this.deps.config.SESSION_MEMORY_EVENTS)
    for (;;) {
      const page = await this.deps.store.listEvents(sessionId, { after: log.lastSeq, limit: PAGE })
      for (const event of page) log.add(event)
      if (page.length < PAGE) return log
    }
  }

  /** Starts (or restarts) the disconnect grace of a loaded session that no socket holds, attached or attaching. */
  private startGrace (sessionId: string): void {
    const entry = this.live.get(sessionId)
    if (!entry?.session || entry.session.socketCount > 0 || entry.ending || !this.accepting) return
    clearTimeout(entry.graceTimer)
    entry.graceTimer = setTimeout(() => { void this.end(sessionId, entry) }, this.deps.config.DISCONNECT_GRACE_MS)
    entry.graceTimer.unref()
  }

  /** Grace over with no socket back: cancel the turn, store the end (+ summary job), forget the session. */
  private async end (sessionId: string, entry: LiveEntry): Promise<void> {
    const session = entry.session
    if (!session || session.socketCount > 0 || entry.ending) return
    entry.ending = (async () => {
      await session.stopTurn('cancelled')
      if (session.steppedDown) return
      const ended = await this.deps.writer.end(sessionId, new Date().toISOString(), session.epoch > 0 ? session.epoch : undefined)
      if (ended) this.deps.onSessionEnded(sessionId)
      // Every event is stored (the end came after them): the next visit numbers on with no gap.
      await this.releaseSeqsOf(session)
    })().finally(() => { if (this.live.get(sessionId) === entry) this.live.delete(sessionId) })
    await entry.ending
  }

  private refuseFull (peer: Peer): null {
    const { MAX_LIVE_SESSIONS } = this.deps.config
    return this.refuse(peer, 'busy_server', `the server holds its limit of ${MAX_LIVE_SESSIONS} live sessions; retry shortly`, CloseCode.tryAgainLater, { retryAfterMs: FULL_RETRY_MS })
  }

  private refuse (peer: Peer, code: Parameters<typeof errorFrame>[0], message: string, closeCode: number, extra: { retryAfterMs?: number } = {}): null {
    peer.send(errorFrame(code, message, extra))
    peer.close(closeCode, message.slice(0, 120))
    return null
  }
}
