/** The live sessions: loads a session on its first socket, runs the disconnect grace, ends sessions, shuts down. */
import { errorFrame } from '../errors.js'
import type { Logger } from '../logger.js'
import { CloseCode } from '../protocol.js'
import type { SessionRepository } from '../store/types.js'
import { EventLog } from './event-log.js'
import { dispatchFrame, type SessionHandle } from './dispatch.js'
import type { Peer } from './peer.js'
import { ChatSession, SEQ_BLOCK, type SessionDeps } from './session.js'
import { settlesWithin } from '../settles.js'

/**
 * Cluster mode (DESIGN §11): attaches a socket to a session another instance owns. `unanswered`: the holder did
 * not answer in time (dead or cut off; its lease lapses soon); `down`: no bus to reach it now.
 */
export interface RemoteSessions {
  attach (opts: { sessionId: string; after?: number; peer: Peer; principal?: string; holder: string }): Promise<SessionHandle | null | 'unanswered' | 'down'>
  /** Closes the sockets here attached to sessions other instances own (1012), so they reconnect elsewhere. */
  leave (why: string): void
}

export interface HubDeps extends SessionDeps {
  store: SessionRepository
  /** Called once a session's end (and its summary job) is stored. */
  onSessionEnded: (sessionId: string) => void
  /** Sessions a client address brings to life per minute (MAX_NEW_SESSIONS_PER_IP_PER_MIN): 0 when allowed, else the ms to wait. */
  takeNewSessionToken?: (address: string) => Promise<number>
  /** Cluster mode: how sockets reach sessions other instances own; absent, such a socket is refused (1013). */
  remote?: RemoteSessions
}

/** A guess for `retryAfterMs` when the server holds MAX_LIVE_SESSIONS: about one disconnect grace plus a turn. */
const FULL_RETRY_MS = 15_000

interface LiveEntry {
  loading: Promise<ChatSession>
  session?: ChatSession
  /** What the sockets' frames act on (set with `session`). */
  handle?: SessionHandle
  graceTimer?: NodeJS.Timeout
  ending?: Promise<void>
  /** A drain is letting the session go: its events are being stored and its lease given back. */
  handingOver?: boolean
}

/** At most this many lapsed sessions are taken per sweep. */
const SWEEP_PAGE = 100

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
  private sweepTimer: NodeJS.Timeout | undefined
  private sweeping = false
  private stopping: Promise<void> | undefined
  private readonly rechecks = new Set<NodeJS.Timeout>()

  constructor (private readonly deps: HubDeps) {}

  get liveCount (): number { return this.live.size }

  /** Turns holding the model now (a queued turn waits, it does not run): a walk at scrape time, nothing counted on the way. */
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
   * anything of it is read. A session another instance owns is reached through it (cluster mode), or refused.
   */
  async attach ({ sessionId, after, peer, principal }: { sessionId: string; after?: number; peer: Peer; principal?: string }): Promise<SessionHandle | null> {
    const { config, takeNewSessionToken } = this.deps
    if (!this.accepting) return this.refuse(peer, 'internal_error', 'server is restarting', CloseCode.restarting)
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
    // A session can end (grace 0) or be mid-end while we wait: then wait for that and load it afresh. A holder that
    // does not answer is waited out once (its lease lapses within SESSION_LEASE_MS), then this instance takes over.
    for (let attempt = 0; attempt < 4; attempt++) {
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
        if (!(err instanceof HeldElsewhere)) {
          log.warn({ err }, 'could not load session')
          return this.refuse(peer, 'store_unavailable', 'storage is unavailable; reconnect shortly', CloseCode.tryAgainLater)
        }
        const remote = await this.attachElsewhere(err, { sessionId, after, peer, principal, log })
        if (remote !== 'again') return remote
        continue
      }
      if (this.live.get(sessionId) !== entry || entry.ending || entry.handingOver) continue
      const joined = await this.join(entry, session, peer, after, log)
      if (joined !== 'again') return joined
    }
    return this.refuse(peer, 'internal_error', 'the session is being ended; reconnect', CloseCode.tryAgainLater)
  }

  /**
   * Cluster mode, owner side: a socket that reached another instance joins a session live here. A session that is
   * not (any more) is refused 1012, so the client reconnects and finds its owner afresh.
   */
  async attachRemote ({ sessionId, after, peer, principal }: { sessionId: string; after?: number; peer: Peer; principal?: string }): Promise<SessionHandle | null> {
    const entry = this.live.get(sessionId)
    // Still loading here (its lease is taken, its log being read): the socket waits for it like a local one would.
    const session = entry?.session ?? await entry?.loading.catch(() => undefined)
    if (!entry || !session || this.live.get(sessionId) !== entry || entry.ending || entry.handingOver || session.steppedDown) {
      return this.refuse(peer, 'busy_server', 'the session moved to another server instance; reconnect', CloseCode.restarting)
    }
    // The socket's instance checked the principal against the stored owner; a session created with auth off has none.
    if (principal !== undefined && session.owner !== null && session.owner !== principal) {
      peer.close(CloseCode.forbidden, 'this session belongs to another user')
      return null
    }
    const joined = await this.join(entry, session, peer, after, peer.log ?? this.deps.logger.child({ sessionId }))
    return joined === 'again' ? this.refuse(peer, 'busy_server', 'the session moved to another server instance; reconnect', CloseCode.restarting) : joined
  }

  /** A session another instance holds: reached through it, waited for (holder silent), or refused. */
  private async attachElsewhere (held: HeldElsewhere, { sessionId, after, peer, principal, log }: { sessionId: string; after?: number; peer: Peer; principal?: string; log: Logger }): Promise<SessionHandle | null | 'again'> {
    const busy = (why: string, retryAfterMs: number): null =>
      this.refuse(peer, 'busy_server', `this session is live on another server instance${why}; reconnect shortly`, CloseCode.tryAgainLater, { retryAfterMs })
    const remote = this.deps.remote
    if (!remote) {
      log.info({ holder: held.instance }, 'session is live on another instance')
      return busy('', 1_000)
    }
    const got = await remote.attach({ sessionId, peer, holder: held.instance, ...(after === undefined ? {} : { after }), ...(principal === undefined ? {} : { principal }) })
    if (got === 'down') {
      log.warn({ holder: held.instance }, 'session is live on another instance and the cluster bus is down')
      return busy(' and cannot be reached now', 2_000)
    }
    if (got !== 'unanswered') return got
    // The holder is gone or cut off: its lease lapses at `until` (at most SESSION_LEASE_MS away), then it is ours.
    const waitMs = Math.min(Math.max(0, Date.parse(held.until) - Date.now()), this.deps.config.SESSION_LEASE_MS) + RECHECK_MARGIN_MS
    log.warn({ holder: held.instance, waitMs }, 'the instance holding the session does not answer: waiting for its lease to lapse')
    const left = await settlesWithin(new Promise<void>((resolve) => { peer.onClose(resolve) }), waitMs)
    if (left || !peer.open) return null
    return 'again'
  }

  /** Joins a socket to a loaded session: the replay, then the live frames. 'again': the session went meanwhile. */
  private async join (entry: LiveEntry, session: ChatSession, peer: Peer, after: number | undefined, log: Logger): Promise<SessionHandle | null | 'again'> {
    const { config } = this.deps
    if (!peer.open) {
      // The socket left while the session loaded: without a grace the session would stay live forever.
      this.startGrace(session.id)
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
      this.startGrace(session.id)
      return this.refuse(peer, 'store_unavailable', 'storage is unavailable to replay this session; reconnect shortly', CloseCode.tryAgainLater)
    }
    if (!joined) {
      this.startGrace(session.id)
      return null
    }
    if (entry.handingOver || this.live.get(session.id) !== entry) {
      // Let go while this socket caught up from the store: the next owner has it now.
      this.detach(session, peer, 'session moved')
      peer.close(CloseCode.restarting, 'session moved to another server instance; reconnect')
      return null
    }
    return entry.handle ?? null
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
        await this.adopt(record, true)
      }
      const last = page.at(-1)
      if (page.length < pageSize || !last) break
      cursor = { before: last.startedAt, beforeId: last.id }
    }
    return found
  }

  /**
   * Cluster mode's takeover of the rest (DESIGN §11): every SESSION_LEASE_MS, active sessions whose lease lapsed
   * (their instance died, or drained and let them go) and that no socket brought back are taken here, so their
   * open turn is closed and their grace runs. Instances race for each; the store grants each lease once.
   */
  startSweeping (): void {
    if (this.sweepTimer !== undefined) return
    const { config, store, logger } = this.deps
    this.sweepTimer = setInterval(() => {
      if (this.sweeping || !this.accepting) return
      this.sweeping = true
      void (async () => {
        for (const record of await store.listLapsedSessions({ limit: SWEEP_PAGE })) {
          if (!this.accepting || this.live.size >= config.MAX_LIVE_SESSIONS) break
          await this.adopt(record, false)
        }
      })().catch((err: unknown) => { logger.warn({ err }, 'could not sweep lapsed sessions') })
        .finally(() => { this.sweeping = false })
    }, Math.max(1_000, config.SESSION_LEASE_MS))
    this.sweepTimer.unref()
  }

  /** Loads a session nobody holds and gives it the grace; one held by a live instance is looked at again later. */
  private async adopt (record: { id: string; owner: string | null }, recheck: boolean): Promise<void> {
    if (this.live.has(record.id)) return
    const entry = this.load(record.id, record.owner)
    try {
      await entry.loading
      // Start-up recovery reports its count once; the sweep names each session it takes.
      if (!recheck) this.deps.logger.info({ sessionId: record.id }, 'recovered a session whose owner stopped renewing its lease')
      this.startGrace(record.id)
    } catch (err) {
      // Another instance holds it: not ours to recover while it lives. Its lease is looked at once more when it
      // ends: a run that died (SIGKILL, under another INSTANCE_ID) leaves leases nobody renews.
      if (err instanceof HeldElsewhere) { if (recheck) this.recheckAfter(record.id, record.owner, err.until) }
      else this.deps.logger.warn({ err, sessionId: record.id }, 'could not recover session')
    }
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

  /** Refuses new sockets from now on (1012): the first moment of a drain (SIGTERM), before sockets are closed. */
  stopAccepting (): void { this.accepting = false }

  /**
   * Shutdown (DESIGN §11, draining): stops accepting and sweeping. With `drainMs` the sockets here are closed 1012 at
   * once, so their clients reconnect to other instances, and running turns go on for up to `drainMs` (the moved
   * sockets follow them over the bus); without, turns are closed interrupted first, in front of every socket. What
   * is left is closed interrupted; then each session is let go: its sockets' disconnects recorded, its events
   * stored, its lease given back, its remaining sockets closed 1012. Called again, it answers the same promise.
   */
  shutdown (drainMs = 0): Promise<void> {
    this.stopping ??= this.drainAll(drainMs)
    return this.stopping
  }

  private async drainAll (drainMs: number): Promise<void> {
    this.accepting = false
    // Sockets here on sessions other instances own have nothing to wait for: they move at once, like the others.
    this.deps.remote?.leave('server restarting')
    clearInterval(this.sweepTimer)
    for (const timer of this.rechecks) clearTimeout(timer)
    this.rechecks.clear()
    const { DURABLE_WAIT_MS } = this.deps.config
    const deadline = Date.now() + drainMs
    await Promise.all([...this.live.values()].map(async (entry) => {
      clearTimeout(entry.graceTimer)
      // A session still loading from a store that is down must not hold shutdown: its sockets are refused by attach.
      if (!(await settlesWithin(entry.loading, DURABLE_WAIT_MS))) return
      const session = await entry.loading.catch(() => null)
      if (!session || entry.ending) return
      const running = session.turnDone
      if (drainMs > 0) {
        for (const peer of session.detachAll('server restarting', (p) => p.via === undefined)) peer.close(CloseCode.restarting, 'server restarting; reconnect')
        if (running) await settlesWithin(running, deadline - Date.now())
      }
      await session.stopTurn('interrupted')
      await this.handOver(entry, session)
    }))
  }

  /** Lets a session go at shutdown: disconnects recorded, every event stored, then the lease given back. */
  private async handOver (entry: LiveEntry, session: ChatSession): Promise<void> {
    entry.handingOver = true
    const peers = session.detachAll('server restarting')
    // Numbering stops here; a turn admitted meanwhile is stopped (its close is the next owner's to store).
    session.retire()
    await session.stopTurn('interrupted')
    // The next owner reads the log from the store: everything must be there before the lease is let go.
    if (await this.deps.writer.flush(this.deps.config.SHUTDOWN_TIMEOUT_MS)) await this.releaseSeqsOf(session)
    for (const peer of peers) peer.close(CloseCode.restarting, 'server restarting; reconnect')
    if (this.live.get(session.id) === entry) this.live.delete(session.id)
  }

  /** Stops renewing leases (shutdown, after the release): what is left lapses within SESSION_LEASE_MS. */
  stopRenewing (): void { clearInterval(this.renewTimer) }

  /**
   * After the writer flushed at shutdown: gives back each live session's unused reserved seqs, so a clean
   * restart leaves no gap (only a crash does).
   */
  async releaseSeqs (): Promise<void> {
    await Promise.all([...this.live.values()].map(async (entry) => { if (entry.session) await this.releaseSeqsOf(entry.session) }))
  }

  private async releaseSeqsOf (session: ChatSession): Promise<void> {
    try {
      if (session.steppedDown) return
      await this.deps.store.releaseSeqs({ sessionId: session.id, used: session.storedSeq, epoch: session.epoch })
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
        log.skipTo(lease.from - 1)
        const session = new ChatSession(sessionId, owner, log, this.deps, { epoch: lease.epoch, reservedTo: lease.to, onFenced: (s) => { this.forget(s) } })
        session.closeOrphanTurn()
        entry.session = session
        entry.handle = this.handleOf(session)
        return session
      })
    }
    entry.loading.catch(() => { if (this.live.get(sessionId) === entry) this.live.delete(sessionId) })
    this.live.set(sessionId, entry)
    return entry
  }

  private async acquire (sessionId: string): Promise<{ epoch: number; from: number; to: number }> {
    const { config, store } = this.deps
    // A new session's row is created with its lease, in one statement: two instances that load one brand-new id at
    // once must not both number its first events (the one without a lease would write them unfenced).
    const got = await store.acquireSession({ sessionId, instanceId: config.INSTANCE_ID, leaseMs: config.SESSION_LEASE_MS, count: SEQ_BLOCK, create: true })
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
      for (const entry of this.live.values()) if (entry.session) sessions.set(entry.session.id, entry.session)
      if (sessions.size === 0) return
      this.renewing = true
      store.renewLeases({ instanceId: config.INSTANCE_ID, leaseMs: config.SESSION_LEASE_MS, leases: [...sessions.values()].map((s) => ({ sessionId: s.id, epoch: s.epoch })) })
        .then((lost) => { for (const id of lost) sessions.get(id)?.stepDown('its lease was taken over') })
        .catch((err: unknown) => { logger.warn({ err, sessions: sessions.size }, 'could not renew session leases') })
        .finally(() => { this.renewing = false })
    }, Math.max(100, Math.floor(config.SESSION_LEASE_MS / 3)))
    this.renewTimer.unref()
  }

  /** What a socket's frames act on: this session, except that a draining instance starts no new turn. */
  private handleOf (session: ChatSession): SessionHandle {
    return {
      handle: async (peer, frame) => {
        if (frame.type === 'user_message' && !this.accepting) {
          peer.send(errorFrame('busy_server', 'this server instance is shutting down: the message was not run; reconnect and send it again', { retryable: true, retryAfterMs: 1_000 }))
          return
        }
        await dispatchFrame(session, peer, frame)
      },
      detach: (peer, why) => { this.detach(session, peer, why) }
    }
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
      const ended = await this.deps.writer.end(sessionId, new Date().toISOString(), session.epoch)
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
