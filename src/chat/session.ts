/** One live session: dense seqs, its event log (recent events in memory), one turn at a time, broadcasts in seq order to every socket. */
import { randomUUID } from 'node:crypto'
import type { Config } from '../config.js'
import { errorFrame } from '../errors.js'
import type { Logger } from '../logger.js'
import type { ChatModel } from '../llm/types.js'
import { NO_METER, type Meter } from '../metrics/meter.js'
import type { Tracer } from '../tracing/tracer.js'
import { CloseCode, PROTOCOL_VERSION, type ErrorCode, type ErrorFrame, type NewEvent, type StoredEvent } from '../protocol.js'
import type { EventWriter } from '../store/event-writer.js'
import { FencedError, StoreError, type SessionRepository } from '../store/types.js'
import { retryDelay } from '../store/write-health.js'
import type { ToolRegistry } from '../tools/registry.js'
import type { EventLog } from './event-log.js'
import { whenFlushed, type Peer } from './peer.js'
import { settlesWithin } from '../settles.js'
import { admitOwner, type TurnBudget, type TurnSlotPort } from './admission.js'
import { finishReasonOf, runTurn, type Turn } from './turn.js'
import { Approvals } from './approvals.js'

export interface SessionDeps {
  writer: EventWriter
  /** Where a resume reads the events that have left memory, "always" approvals are remembered, and seqs are reserved before they are sent. */
  store: Pick<SessionRepository, 'listEvents' | 'rememberApproval' | 'isApprovalRemembered' | 'reserveSeqs'>
  model: ChatModel
  tools: ToolRegistry
  config: Config
  logger: Logger
  /** Per-session user-message limiter: resolves to 0 when allowed, else the ms to wait. */
  takeMessageToken: (sessionId: string) => Promise<number>
  /** Per-user limiter across sessions (only for owned sessions, i.e. with auth on); same answer. */
  takeUserMessageToken?: (principal: string) => Promise<number>
  /** Counts owners' tokens per day and holds them to USER_DAILY_TOKEN_BUDGET; absent: nothing counted. */
  budget?: TurnBudget
  /** Per client address limiter across sessions (RATE_MESSAGES_PER_MIN_PER_IP); same answer. */
  takeAddressMessageToken?: (address: string) => Promise<number>
  /** Model slots (MAX_CONCURRENT_TURNS); absent: no bound. */
  slots?: TurnSlotPort
  /** Metrics (DESIGN §12); absent or NO_METER: nothing counted. */
  meter?: Meter
  /** Traces; absent: no spans. */
  tracer?: Tracer
}

/** One delta in this many (index & mask === 0) is timed from decoding to its write: cheap enough for every turn. */
const LATENCY_SAMPLE_MASK = 63


/** Seqs reserved in the store per round trip (DESIGN §11); another block is asked for when half of one is left. */
export const SEQ_BLOCK = 64

/** `ready`: durable when it had to be (a user_message); a stored event also waits until its seq is reserved. */
interface Outgoing { data: string; seq: number; ready: boolean }

/** Most events read from the store per round trip when a socket resumes from before the events in memory. */
const REPLAY_PAGE = 500

export class ChatSession {
  readonly peers = new Set<Peer>()
  /** Sockets still reading their replay from the store: not in the broadcast yet, but they hold the session. */
  private readonly joining = new Set<Peer>()
  private lastSeq: number
  /** Highest seq already broadcast; replays never go past it (later ones arrive through the outbox). */
  private sentSeq: number
  /** Frames waiting behind a user_message that is not durable yet, in seq order. */
  private outbox: Outgoing[] = []
  private turn: Turn | null = null
  /**
   * Highest seq the store has reserved for this session: no frame with a higher seq leaves before the store has
   * reserved it, so a restart after a crash numbers past anything a client may have seen (DESIGN §11).
   */
  private reserved: number
  private reserving = false
  /** The owner lease's fencing token, taken when the session was loaded: every write carries it. */
  readonly epoch: number
  /** Lost the lease (another instance owns the session): nothing more is written or sent. */
  private fenced = false
  /** Being handed over (a drain): nothing more is numbered, stored or sent; the next owner numbers on from the store. */
  private retired = false
  private readonly onFenced: (session: ChatSession) => void
  /** Sockets that resent a message (same clientId) while it waited for the store: they get its outcome too. */
  private readonly resentWhilePending = new Map<number, Set<Peer>>()
  private readonly log: Logger
  private readonly meter: Meter
  /** Tool calls waiting for a user's decision (DESIGN §13). */
  readonly approvals: Approvals

  /**
   * @param owner the principal that owns the session (DESIGN §10); null with auth off, or for a session created
   * while it was off. Every socket of an owned session is its owner's: the hub refuses the others.
   */
  constructor (
    readonly id: string, readonly owner: string | null, private readonly recent: EventLog, private readonly deps: SessionDeps,
    lease: { epoch: number; reservedTo: number; onFenced: (session: ChatSession) => void }
  ) {
    this.reserved = lease.reservedTo
    this.epoch = lease.epoch
    this.onFenced = lease.onFenced
    this.lastSeq = recent.lastSeq
    this.sentSeq = this.lastSeq
    this.log = deps.logger
    this.meter = deps.meter ?? NO_METER
    this.approvals = new Approvals({
      sessionId: id,
      owner,
      record: (event) => this.record(event),
      refuse: (peer, code, message, extra) => this.refuse(peer, code, message, extra),
      store: deps.store,
      timeoutMs: deps.config.TOOL_APPROVAL_TIMEOUT_MS,
      log: this.log.child({ sessionId: id })
    })
  }

  /** The events in memory (the most recent ones), ascending. */
  get events (): readonly StoredEvent[] { return this.recent.events }
  /** The recent conversation events (user, tool, assistant) the model's context is built from. */
  get context (): readonly StoredEvent[] { return this.recent.context }
  /** Sockets attached or attaching: the session is in use while this is above 0. */
  get socketCount (): number { return this.peers.size + this.joining.size }

  get runningTurnId (): string | null { return this.turn?.id ?? null }
  /** Settles when the turn in progress (if any) is done and its assistant_message recorded. */
  get turnDone (): Promise<void> | undefined { return this.turn?.done }
  /** A turn holds the model now (admitted and not queued or waiting for the store). */
  get turnRunning (): boolean { return this.turn?.running === true }
  get steppedDown (): boolean { return this.fenced }

  /**
   * This instance no longer owns the session (DESIGN §11): from now on nothing is written or sent; the running
   * turn is aborted (its close is the new owner's to store) and the sockets are closed 1012 so they reconnect.
   */
  stepDown (why: string): void {
    if (this.fenced) return
    this.fenced = true
    this.log.warn({ sessionId: this.id, epoch: this.epoch, why }, 'lost the session lease: stepping down')
    const turn = this.turn
    if (turn) { turn.stopReason ??= 'interrupted'; turn.abort.abort() }
    for (const peer of [...this.peers, ...this.joining]) peer.close(CloseCode.restarting, 'session moved to another instance; reconnect')
    this.peers.clear()
    this.outbox = []
    this.onFenced(this)
  }
  get storedSeq (): number { return this.lastSeq }

  /**
   * A drain lets the session go: from now on nothing is numbered, stored or sent (a socket that finishes its replay
   * late, a message admitted late), so every event it numbered is covered by the writer's flush before the lease is
   * given back, and no seq a client saw is numbered again by the next owner.
   */
  retire (): void { this.retired = true }

  /** Closes a turn left open by a crash (a user_message with no assistant_message) as interrupted. */
  closeOrphanTurn (): void {
    for (const turnId of this.recent.openTurns) this.record({ type: 'assistant_message', turnId, content: '', finishReason: 'interrupted' })
  }

  /**
   * Session frame, replay (only with `after`), the running turn's deltas, then this socket's `connected`
   * event; live frames follow. Events older than those in memory are read from the store first, page by
   * page, before the socket joins. Resolves false (the socket not joined) when it closed meanwhile;
   * rejects when the store cannot be read.
   */
  async attach (peer: Peer, after: number | undefined): Promise<boolean> {
    let from = this.hello(peer, after)
    const pageSize = Math.min(REPLAY_PAGE, this.deps.config.SESSION_MEMORY_EVENTS)
    this.joining.add(peer)
    // A socket that closes while a page is read stops holding the session at once, not when the read returns.
    let leave!: (gone: null) => void
    const gone = new Promise<null>((resolve) => { leave = resolve })
    const stopWatching = peer.onClose(() => { leave(null) })
    try {
      while (from !== undefined && from < this.recent.firstSeq - 1) {
        const upTo = Math.min(this.recent.firstSeq - 1, this.sentSeq)
        if (upTo <= from) break
        const read = this.deps.store.listEvents(this.id, { after: from, limit: Math.min(pageSize, upTo - from) })
        const page = await Promise.race([read, gone])
        if (page === null) { read.catch(() => {}); return false }
        if (!peer.open) return false
        for (const e of page) if (e.seq <= upTo) this.deliver(peer, JSON.stringify(e), e.seq)
        // A page can pass upTo where the store lacks an event it refused for good: the rest comes from memory.
        from = page.length > 0 ? Math.max(from, Math.min(page.at(-1)!.seq, upTo)) : upTo
      }
    } finally {
      stopWatching()
      this.joining.delete(peer)
    }
    if (!peer.open) return false
    this.join(peer, from)
    return true
  }

  /** Sends the session frame; returns the seq the replay starts after (undefined: no replay). */
  private hello (peer: Peer, after: number | undefined): number | undefined {
    const { config, model, tools } = this.deps
    const hadEvents = this.lastSeq > 0
    // Beyond what was sent, or a seq whose event a crash lost: the client's view differs from the log.
    const reset = after !== undefined && (after > this.sentSeq || this.recent.lost(after))
    if (after !== undefined && this.meter.enabled) this.meter.resume(reset ? 'reset' : after < this.recent.firstSeq - 1 ? 'store' : 'memory')
    peer.send({
      type: 'session',
      protocol: PROTOCOL_VERSION,
      sessionId: this.id,
      resumed: hadEvents && !reset,
      ...(reset ? { reset: true } : {}),
      lastSeq: this.sentSeq,
      runningTurnId: this.runningTurnId,
      model: model.info,
      tools: tools.names(),
      pendingApprovals: this.approvals.waiting,
      limits: { maxMessageChars: config.MAX_MESSAGE_CHARS, maxMessageBytes: config.MAX_MESSAGE_BYTES }
    })
    return after === undefined ? undefined : reset ? 0 : after
  }

  /** The rest of the replay from memory, the running turn's deltas, then the socket joins the broadcast. */
  private join (peer: Peer, from: number | undefined): void {
    if (from !== undefined) {
      for (const e of this.recent.events) if (e.seq > from && e.seq <= this.sentSeq) this.deliver(peer, JSON.stringify(e), e.seq)
      const turn = this.turn
      if (turn) {
        turn.reasoning.forEach((text, index) => peer.send({ type: 'reasoning', turnId: turn.id, index, text }))
        turn.deltas.forEach((text, index) => peer.send({ type: 'delta', turnId: turn.id, index, text }))
      }
    }
    peer.lastSentSeq = Math.max(peer.lastSentSeq, this.sentSeq)
    this.peers.add(peer)
    this.record({ type: 'connected', connectionId: peer.connectionId })
  }

  /** Records `disconnected` once per socket; the session itself lives on (the hub runs the grace timer). */
  detach (peer: Peer, reason: string): boolean {
    if (!this.peers.delete(peer)) return false
    this.record({ type: 'disconnected', connectionId: peer.connectionId, reason })
    return true
  }

  refuse (peer: Peer, code: ErrorCode, message: string, extra: Partial<ErrorFrame> = {}): void {
    peer.send(errorFrame(code, message, extra))
  }

  /**
   * Admits a message — repeat, busy, storage room and rate checks, then its seq and turn — and returns once it
   * is admitted or refused, so the socket's next frame (a `cancel` right behind it, say) sees its turn. Waiting
   * for the store and running the turn go on without holding the socket's frames.
   */
  async userMessage (peer: Peer, { content, clientId }: { content: string; clientId?: string }): Promise<void> {
    if (this.answerRepeat(peer, clientId)) return
    if (this.refuseIfBusy(peer)) return
    const { writer, config } = this.deps
    if (!writer.hasRoom(64)) {
      this.refuse(peer, 'store_unavailable', 'storage is behind; the message was not run, try again shortly')
      return
    }
    const waitMs = await this.deps.takeMessageToken(this.id)
    if (waitMs > 0) { this.refuse(peer, 'rate_limited', `too many messages in this session; retry in ${Math.ceil(waitMs / 1000)} s`, { retryAfterMs: waitMs }); return }
    const { takeAddressMessageToken } = this.deps
    const addressWaitMs = peer.address !== undefined && takeAddressMessageToken ? await takeAddressMessageToken(peer.address) : 0
    if (addressWaitMs > 0) {
      this.refuse(peer, 'rate_limited', `too many messages from this address; retry in ${Math.ceil(addressWaitMs / 1000)} s`, { retryAfterMs: addressWaitMs })
      return
    }
    const allowance = this.owner === null ? undefined : await admitOwner({ owner: this.owner, deps: this.deps, refuse: (...args) => this.refuse(peer, ...args), sessionId: this.id })
    if (allowance === false) return
    // The socket (or the whole server, shutting down) may have gone while we waited for the limiter.
    if (!peer.open) return
    // Another message may have won the race while we waited for the limiter: possibly this very one, resent.
    if (this.answerRepeat(peer, clientId)) return
    if (this.refuseIfBusy(peer)) return

    const turnId = randomUUID()
    const abort = new AbortController()
    // The queue's places reach the session's sockets after the user_message, so one found before it waits.
    let announce: ((position: number) => void) | undefined
    let firstPosition: number | undefined
    const ticket = this.deps.slots?.acquire({
      key: this.owner ?? peer.address ?? this.id,
      signal: abort.signal,
      onPosition: (position) => { if (announce) announce(position); else firstPosition = position }
    })
    if (ticket?.type === 'full') {
      this.refuse(peer, 'busy_server', `the server is at its limit of running and queued answers; retry in ${Math.ceil(ticket.retryAfterMs / 1000)} s`, { retryAfterMs: ticket.retryAfterMs })
      return
    }
    let closed!: () => void
    const turn: Turn = {
      id: turnId, abort, deltas: [], reasoning: [], stopReason: null, done: new Promise((resolve) => { closed = resolve }),
      log: (peer.log ?? this.log.child({ sessionId: this.id })).child({ turnId }),
      ...(allowance === undefined ? {} : { budget: { principal: this.owner!, remaining: allowance } }),
      ...(ticket ? { slot: ticket.granted } : {})
    }
    const settle = closed
    // Whichever way the turn ends, its slot (or its place in the queue) is given back.
    closed = () => { ticket?.release(); settle() }
    this.turn = turn
    const { durable: stored } = this.append({ type: 'user_message', turnId: turn.id, content, ...(clientId ? { clientId } : {}) }, true, peer)
    announce = (position) => { if (this.turn === turn) this.sendLive(JSON.stringify({ type: 'queued', turnId, position })) }
    if (firstPosition !== undefined) announce(firstPosition)
    this.startTurn(peer, turn, stored, closed).catch((err: unknown) => {
      // A bug, not a store or model failure (those are handled inside): the turn must not hold the session.
      turn.log!.error({ err }, 'starting the turn failed')
      peer.send(errorFrame('internal_error', 'internal error while starting the turn', { retryable: true, turnId: turn.id }))
      if (this.turn === turn) {
        // Best effort, so the turn still ends with its one assistant_message.
        try { this.record({ type: 'assistant_message', turnId: turn.id, content: '', finishReason: 'error' }) } catch { /* already logged */ }
        this.turn = null
      }
      closed()
    })
  }

  /** Runs an admitted message's turn once the store has it; closes it unrun when the store refuses it or is too slow. */
  private async startTurn (peer: Peer, turn: Turn, stored: Promise<boolean>, closed: () => void): Promise<void> {
    const { config } = this.deps
    const settled = await settlesWithin(stored, config.DURABLE_WAIT_MS, turn.abort.signal)
    const durable = settled && await stored
    // Waits for a model slot; a cancel, the grace's end or shutdown while queued ends the wait (stopReason set).
    if (durable && turn.slot && !turn.stopReason) await turn.slot
    if (!durable || turn.stopReason) {
      // Accepted but not run: the message stays queued for the store (unless refused) and its turn is closed, in order.
      // A refusal is told when it comes (append); here only that the store was too slow.
      if (!settled && !turn.stopReason) {
        this.refuse(peer, 'store_unavailable', 'storage did not confirm the message in time; it was not run', { turnId: turn.id })
      }
      const finishReason = finishReasonOf(turn.stopReason) ?? 'error'
      this.record({ type: 'assistant_message', turnId: turn.id, content: '', finishReason })
      // Closed before it ran (cancelled while queued, refused by the store): still a turn, counted like the others.
      this.meter.turnEnded(finishReason, 0)
      this.turn = null
      closed()
      return
    }
    turn.running = true
    void runTurn({ session: this, turn, deps: this.deps }).finally(() => {
      if (this.turn === turn) this.turn = null
      closed()
    })
  }

  /**
   * A clientId already seen: answer with its stored user_message instead of running it again.
   * While that event is still waiting to be durable it is not sent now: it reaches this socket
   * in seq order once stored (sending it early acked a message that was not durable yet, out of
   * order, and the socket then got it a second time from the broadcast).
   */
  private answerRepeat (peer: Peer, clientId: string | undefined): boolean {
    const seq = clientId === undefined ? undefined : this.recent.clientSeq(clientId)
    if (seq === undefined) return false
    if (seq > this.sentSeq) {
      // Still waiting for the store: stored, it reaches every socket in seq order; refused, this one hears so too.
      // Sockets that left meanwhile are dropped here, so reconnect-and-resend during an outage cannot pile them up.
      const waiting = this.resentWhilePending.get(seq) ?? new Set<Peer>()
      for (const p of waiting) if (!p.open) waiting.delete(p)
      this.resentWhilePending.set(seq, waiting.add(peer))
      return true
    }
    const prior = this.recent.at(seq)
    if (prior) this.deliver(peer, JSON.stringify(prior), 0)
    else void this.answerFromStore(peer, seq)
    return true
  }

  /**
   * A repeat of a message that has left memory: its stored event is read back for the sender (so, unlike
   * an answer from memory, it may reach the sender after frames it sent later).
   */
  private async answerFromStore (peer: Peer, seq: number): Promise<void> {
    try {
      const [prior] = await this.deps.store.listEvents(this.id, { after: seq - 1, limit: 1 })
      if (!peer.open) return
      if (prior?.seq === seq) this.deliver(peer, JSON.stringify(prior), 0)
      else this.refuse(peer, 'store_unavailable', 'this message was sent before, but storage no longer has it; it was not run again (send it with a new clientId)', { retryable: false })
    } catch (err) {
      (peer.log ?? this.log.child({ sessionId: this.id })).warn({ err }, 'could not read a repeated message back from the store')
      if (peer.open) this.refuse(peer, 'store_unavailable', 'this message was already sent, but storage is unavailable to confirm it; resend it shortly')
    }
  }

  private refuseIfBusy (peer: Peer): boolean {
    if (!this.turn) return false
    this.refuse(peer, 'busy', 'a turn is already running in this session; wait for it or send cancel', { turnId: this.turn.id })
    return true
  }

  cancel (peer: Peer, turnId: string | undefined): void {
    const turn = this.turn
    if (!turn || (turnId !== undefined && turnId !== turn.id)) {
      this.refuse(peer, 'not_running', turn ? `turn ${turnId} is not running (running: ${turn.id})` : 'no turn is running')
      return
    }
    this.stopTurn('cancelled')
  }

  /** Stops the running turn (cancel, grace expiry, shutdown) and waits until its assistant_message is recorded. */
  async stopTurn (reason: 'cancelled' | 'interrupted'): Promise<void> {
    const turn = this.turn
    if (!turn) return
    turn.stopReason ??= reason
    turn.abort.abort()
    await turn.done
  }

  /** Streams one delta of the running turn to every socket (not stored). */
  delta (turn: Turn, text: string): void {
    const index = turn.deltas.push(text) - 1
    // The hot path: one string per token, the constant part built once per turn.
    turn.deltaPrefix ??= `{"type":"delta","turnId":${JSON.stringify(turn.id)},"index":`
    const data = `${turn.deltaPrefix}${index},"text":${JSON.stringify(text)}}`
    if (!this.sendLive(data)) return
    if ((index & LATENCY_SAMPLE_MASK) === 0 && this.meter.enabled && this.peers.size > 0) {
      const decoded = performance.now()
      whenFlushed(() => { this.meter.addedLatency((performance.now() - decoded) / 1000) })
    }
  }

  /** Streams one reasoning piece of the running turn to every socket (not stored one by one; kept for resumes). */
  reasoning (turn: Turn, text: string): void {
    const index = turn.reasoning.push(text) - 1
    this.sendLive(JSON.stringify({ type: 'reasoning', turnId: turn.id, index, text }))
  }

  /**
   * A frame that is not stored (delta, reasoning, queued) to every socket, behind any stored frame still held back.
   * True when it was handed to the sockets now, false when it waits in the outbox.
   */
  private sendLive (data: string): boolean {
    if (this.outbox.length > 0) { this.outbox.push({ data, seq: 0, ready: true }); return false }
    for (const peer of this.peers) peer.sendRaw(data)
    return true
  }

  /** Gives the event its seq and ts, hands it to the writer and broadcasts it in seq order. */
  record (input: NewEvent): StoredEvent {
    return this.append(input, false).event
  }

  /**
   * Like record, but the frame is held back (with everything after it) until the event is durable:
   * a user_message is acknowledged only once stored.
   */
  private append (input: NewEvent, acked: boolean, sender?: Peer): { event: StoredEvent; durable: Promise<boolean> } {
    // A session that stepped down writes nothing: the new owner numbers and stores from here.
    if (this.fenced || this.retired) return { event: { ...input, seq: 0, ts: new Date().toISOString() } as StoredEvent, durable: Promise.resolve(false) }
    const seq = this.lastSeq + 1
    const event = { ...input, seq, ts: new Date().toISOString() } as StoredEvent
    // Serialise before the seq is taken: a value JSON cannot carry must fail here, not leave a gap.
    const data = JSON.stringify(event)
    this.lastSeq = seq
    if (input.type === 'error') this.meter.error(input.code)
    const durable = this.deps.writer.append(this.id, event, { urgent: acked, epoch: this.epoch })
    this.recent.add(event, durable)
    if (seq + SEQ_BLOCK / 2 > this.reserved) this.reserveMore()
    if (acked || this.outbox.length > 0 || seq > this.reserved) {
      const item: Outgoing = { data, seq, ready: !acked }
      this.outbox.push(item)
      if (acked) {
        void durable.then((stored) => {
          // A message the store refused for good is never acknowledged; its refusal goes to the sender (and to
          // sockets that resent it meanwhile), whenever it comes — also after its turn was cancelled or timed out.
          const resent = this.resentWhilePending.get(seq)
          this.resentWhilePending.delete(seq)
          if (!stored) {
            item.data = ''
            const turnId = 'turnId' in event ? event.turnId : undefined
            for (const p of new Set([...(sender ? [sender] : []), ...(resent ?? [])])) {
              // Not retryable: the store refused this message for good (sending it again is refused again).
              if (p.open) this.refuse(p, 'store_unavailable', 'storage refused the message; it was not run', { retryable: false, ...(turnId ? { turnId } : {}) })
            }
          }
          item.ready = true
          this.flushOutbox()
        })
      }
    } else {
      this.broadcast(data, seq)
    }
    return { event, durable }
  }

  /** Records the disconnect of every socket (or those `which` picks) and takes them out of the broadcast (shutdown); the caller closes them. */
  detachAll (reason: string, which: (peer: Peer) => boolean = () => true): Peer[] {
    const peers = [...this.peers].filter(which)
    for (const peer of peers) this.detach(peer, reason)
    return peers
  }

  /** Asks the store for the next block of seqs (one request at a time, retried while the store is down). */
  private reserveMore (): void {
    if (this.reserving) return
    this.reserving = true
    void (async () => {
      for (let attempt = 1; ; attempt++) {
        if (this.fenced) return
        try {
          const got = await this.deps.store.reserveSeqs({ sessionId: this.id, count: SEQ_BLOCK, epoch: this.epoch })
          if (got.from !== this.reserved + 1) this.log.error({ sessionId: this.id, from: got.from, reserved: this.reserved }, 'seq reservation moved under this session')
          this.reserved = Math.max(this.reserved, got.to)
          break
        } catch (err) {
          if (err instanceof FencedError) { this.stepDown('the store refused its epoch'); return }
          this.log.warn({ err, sessionId: this.id, attempt }, 'could not reserve seqs; stored events wait to be sent')
          if (err instanceof StoreError && !err.retryable) break
          await new Promise((resolve) => setTimeout(resolve, retryDelay(attempt, 50, 2_000)).unref())
        }
      }
      this.reserving = false
      this.flushOutbox()
      if (this.lastSeq + SEQ_BLOCK / 2 > this.reserved) this.reserveMore()
    })()
  }

  private flushOutbox (): void {
    while (this.outbox.length > 0 && this.outbox[0].ready && this.outbox[0].seq <= this.reserved) {
      const item = this.outbox.shift()!
      if (item.seq === 0) for (const peer of this.peers) peer.sendRaw(item.data)
      else this.broadcast(item.data, item.seq)
    }
  }

  private broadcast (data: string, seq: number): void {
    this.sentSeq = seq
    if (data === '') return
    for (const peer of this.peers) this.deliver(peer, data, seq)
  }

  private deliver (peer: Peer, data: string, seq: number): void {
    if (seq !== 0 && seq <= peer.lastSentSeq) return
    peer.sendRaw(data)
    if (seq !== 0) peer.lastSentSeq = seq
  }
}
