/** GET /ws/session/:id — protocol v1 over WebSocket: checks, per-frame parsing and dispatch to the live session. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { socketCredential } from '../auth/credentials.js'
import { watchExpiry } from '../auth/socket-expiry.js'
import { AuthError, type Principal } from '../auth/types.js'
import { createRateLimit } from '../chat/limits.js'
import { addressKey } from '../quota/address-key.js'
import { parseClientFrame } from '../chat/frames.js'
import { createPeer, type Peer } from '../chat/peer.js'
import type { SessionHandle } from '../chat/dispatch.js'
import { errorFrame } from '../errors.js'
import { CloseCode, SESSION_ID_PATTERN } from '../protocol.js'
import { createHostPolicy } from './origin.js'

interface SocketRequest { Params: { id: string }; Querystring: { after?: string; access_token?: string } }

const AFTER_PATTERN = /^\d{1,15}$/
/** A guess for `retryAfterMs` when the server holds MAX_SOCKETS. */
const SOCKETS_FULL_RETRY_MS = 5_000
/** Frames a socket may send before its session has loaded (from a slow store, say) without being closed. */
const MAX_FRAMES_BEFORE_READY = 32

/** The close code ws sends when it fails a connection with one of its receiver errors (ws/lib/receiver.js). */
const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.tooLarge,
  WS_ERR_INVALID_UTF8: 1007,
  WS_ERR_INVALID_CLOSE_CODE: 1002,
  WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH: 1002,
  WS_ERR_INVALID_OPCODE: 1002,
  WS_ERR_EXPECTED_FIN: 1002,
  WS_ERR_EXPECTED_MASK: 1002,
  WS_ERR_UNEXPECTED_MASK: 1002,
  WS_ERR_UNEXPECTED_RSV_1: 1002,
  WS_ERR_UNEXPECTED_RSV_2_3: 1002,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: CloseCode.tooLarge,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: CloseCode.policy
}

export default async function sessionSocketRoutes (app: FastifyInstance): Promise<void> {
  const { hub, config, auth, userSockets, addressSockets, serverSockets, meter } = app.services
  const takeFrameToken = createRateLimit({ perMinute: config.RATE_FRAMES_PER_MIN })
  const takeConnectionToken = createRateLimit({ perMinute: config.RATE_CONNECTIONS_PER_MIN_PER_IP })
  const hosts = createHostPolicy(config)
  const heartbeat = startHeartbeat(config.HEARTBEAT_MS)
  /** Counts the socket against the server's and its address's caps until it closes; false (and closed 1013) over one. */
  const holdSocket = (peer: Peer, address: string): boolean => {
    if (!serverSockets.acquire('')) {
      // Counted here: the route's close listener (which counts the others) is not attached yet.
      meter.wsClosed(CloseCode.tryAgainLater)
      peer.send(errorFrame('busy_server', `the server holds its limit of ${config.MAX_SOCKETS} sockets; retry shortly`, { retryAfterMs: SOCKETS_FULL_RETRY_MS }))
      peer.close(CloseCode.tryAgainLater, 'server at its socket limit')
      return false
    }
    if (!addressSockets.acquire(address)) {
      serverSockets.release('')
      meter.wsClosed(CloseCode.tryAgainLater)
      peer.send(errorFrame('too_many_sockets', `at most ${config.MAX_SOCKETS_PER_IP} sockets per client address`))
      peer.close(CloseCode.tryAgainLater, 'too many sockets from this address')
      return false
    }
    peer.onClose(() => { serverSockets.release(''); addressSockets.release(address) })
    return true
  }
  app.addHook('onClose', async () => heartbeat.stop())

  // Sockets have their own limits (per session, user, address and server): not the REST request limit.
  app.get<SocketRequest>('/ws/session/:id', { websocket: true, preValidation: validateUpgrade, config: { rateLimit: false } }, (socket, request) => {
    const sessionId = request.params.id
    const after = request.query.after === undefined ? undefined : Number(request.query.after)
    if (!hosts.originAllowed(request.headers.origin)) {
      request.log.warn({ origin: request.headers.origin }, 'websocket origin refused')
      meter.wsClosed(CloseCode.policy)
      socket.close(CloseCode.policy, 'origin not allowed')
      return
    }
    // request.ip is the socket's address, or the one X-Forwarded-For names when a TRUST_PROXY proxy sent it; limits
    // count an IPv6 client by its /64.
    const address = addressKey(request.ip)
    const peer = createPeer(socket, { maxBufferedBytes: config.MAX_SEND_BUFFER_BYTES, stream: request.socket, address, ...(meter.enabled ? { meter } : {}) })
    // Every line about this socket (and, through peer.log, its turns) says which session, socket, caller and address.
    const context = { sessionId, connectionId: peer.connectionId, client: request.ip }
    let log = request.log.child({ ...context, principal: null })
    peer.log = log
    if (!holdSocket(peer, address)) {
      log.info('socket refused: too many sockets')
      return
    }
    heartbeat.watch(socket)
    let principal: Principal | null = null
    // The credential's expiry closes the socket unless an `auth` frame replaced it in time (DESIGN §10).
    const expiry = watchExpiry(() => {
      log.info('credential expired: closing the socket')
      peer.close(CloseCode.unauthenticated, 'credential expired')
    })
    /** Verifies the credential before any session work; null when the socket was refused (and closed). */
    const signIn = async (): Promise<Principal | null> => {
      if (!auth.enabled) return null
      try {
        principal = await auth.authenticate(socketCredential(request.headers, request.query))
      } catch (err) {
        if (!(err instanceof AuthError)) throw err
        log.info({ reason: err.message }, 'socket refused: not authenticated')
        if (err.kind === 'unavailable') peer.close(CloseCode.tryAgainLater, 'credentials cannot be verified right now')
        else peer.close(CloseCode.unauthenticated, err.message.slice(0, 120))
        return null
      }
      if (!peer.open) return null
      if (!userSockets.acquire(principal.id)) {
        const held = principal.id
        principal = null
        peer.send(errorFrame('too_many_sockets', `at most ${config.MAX_SOCKETS_PER_USER} sockets per user`))
        peer.close(CloseCode.tryAgainLater, 'too many sockets for this user')
        log.info({ principal: held }, 'socket refused: too many sockets for this user')
        return null
      }
      const held = principal.id
      peer.onClose(() => { userSockets.release(held); expiry.stop() })
      log = request.log.child({ ...context, principal: held })
      peer.log = log
      expiry.set(principal.expiresAt)
      return principal
    }
    // Listeners first, synchronously; signing in and loading the session is a promise each listener awaits.
    /** Sockets an address opens per minute: each visit of a session stores its connected and disconnected events. */
    const openAllowed = async (): Promise<boolean> => {
      const waitMs = await takeConnectionToken(address)
      if (waitMs === 0) return true
      log.info('socket refused: too many connections from this address')
      peer.send(errorFrame('rate_limited', `too many connections from this address; retry in ${Math.ceil(waitMs / 1000)} s`, { retryAfterMs: waitMs }))
      peer.close(CloseCode.tryAgainLater, 'too many connections from this address')
      return false
    }
    const ready: Promise<SessionHandle | null> = openAllowed().then(async (allowed) => allowed ? await signIn() : false).then(async (who) => {
      if (who === false) return null
      if (auth.enabled && who === null) return null
      return await hub.attach({ sessionId, after, peer, ...(who ? { principal: who.id } : {}) })
    }).catch((err: unknown) => {
      log.error({ err }, 'attach failed')
      peer.close(CloseCode.internal, 'internal error')
      return null
    })
    void ready.then((session) => { if (session) log.info({ after }, 'socket connected') })
    /** The `auth` frame: a fresh credential for the same principal, or the socket is closed 4401. */
    const reauthenticate = async (token: string): Promise<void> => {
      if (!auth.enabled || !principal) { peer.send(errorFrame('bad_request', 'authentication is not enabled on this server')); return }
      let next: Principal
      try {
        next = await auth.authenticate(token)
      } catch (err) {
        if (!(err instanceof AuthError)) throw err
        if (err.kind === 'unavailable') {
          // The current credential still holds until it expires: the client may send the new one again.
          peer.send(errorFrame('internal_error', 'the new credential cannot be verified right now; send it again shortly', { retryable: true }))
          return
        }
        log.info({ reason: err.message }, 'auth frame refused: closing the socket')
        peer.close(CloseCode.unauthenticated, err.message.slice(0, 120))
        return
      }
      if (next.id !== principal.id) {
        log.warn({ presented: next.id }, 'auth frame for another principal: closing the socket')
        peer.close(CloseCode.unauthenticated, 'the new credential names another principal')
        return
      }
      principal = next
      expiry.set(next.expiresAt)
    }

    let loaded = false
    let early = 0
    void ready.then(() => { loaded = true })
    // A socket's frames are handled one after another, in the order they came: a message is admitted (its
    // turn registered) before the next frame is looked at; its storing and its turn do not hold the queue.
    let inOrder: Promise<unknown> = ready
    socket.on('message', (raw, isBinary) => {
      if (!loaded && ++early > MAX_FRAMES_BEFORE_READY) {
        peer.close(CloseCode.policy, 'too many frames before the session was ready')
        return
      }
      inOrder = inOrder.then(async () => {
        const session = await ready
        if (!session || !peer.open) return
        const waitMs = await takeFrameToken(peer.connectionId)
        if (waitMs > 0) {
          peer.send(errorFrame('rate_limited', `too many frames on this connection; retry in ${Math.ceil(waitMs / 1000)} s`, { retryAfterMs: waitMs }))
          return
        }
        const parsed = parseClientFrame(raw as Buffer, isBinary, config.MAX_MESSAGE_CHARS)
        if (!parsed.ok) { peer.send(errorFrame('bad_request', parsed.message)); return }
        const frame = parsed.frame
        // The credential belongs to this socket, wherever its session runs; the rest acts on the session.
        if (frame.type === 'auth') await reauthenticate(frame.token)
        else await session.handle(peer, frame)
      }).catch((err: unknown) => {
        log.error({ err }, 'frame handling failed')
        peer.send(errorFrame('internal_error', 'internal error while handling the frame', { retryable: true }))
      })
    })
    // ws fails a connection on a protocol error (oversize frame, bad UTF-8) by sending its close code and
    // destroying the socket, so 'close' only says 1006: remember what the client was really sent.
    let failedWith: string | undefined
    let failedCode: number | undefined
    socket.on('close', (code, reason) => {
      meter.wsClosed(failedCode ?? code)
      void ready.then((session) => {
        if (!session) return
        const why = failedWith ?? (reason.length > 0 ? `${code} ${reason.toString('utf8').slice(0, 120)}` : String(code))
        session.detach(peer, why)
        log.info({ code, reason: why }, 'socket disconnected')
      })
    })
    socket.on('error', (err: Error & { code?: string }) => {
      const sent = err.code ? WS_ERROR_CLOSE_CODES[err.code] : undefined
      if (sent !== undefined) {
        failedWith ??= `${sent} ${err.message}`.slice(0, 120)
        failedCode ??= sent
      }
      log.warn({ err }, 'socket error')
    })
  })
}

/** Refuses a bad id or `after` with HTTP 400 before the upgrade. */
async function validateUpgrade (request: FastifyRequest<SocketRequest>, reply: FastifyReply): Promise<void> {
  if (!SESSION_ID_PATTERN.test(request.params.id)) {
    await reply.code(400).send({ error: { code: 'INVALID_SESSION_ID', message: 'session id must match ^[A-Za-z0-9_-]{1,64}$' } })
    return
  }
  const after = request.query.after
  if (after !== undefined && !AFTER_PATTERN.test(after)) {
    await reply.code(400).send({ error: { code: 'INVALID_AFTER', message: 'after must be a non-negative integer seq' } })
  }
}

/** One timer for every socket: a socket that missed the previous ping's pong is dropped. */
function startHeartbeat (intervalMs: number): { watch: (socket: WebSocket) => void; stop: () => void } {
  const alive = new Map<WebSocket, boolean>()
  const timer = intervalMs > 0
    ? setInterval(() => {
      for (const [socket, answered] of alive) {
        if (!answered) { socket.terminate(); alive.delete(socket); continue }
        alive.set(socket, false)
        socket.ping()
      }
    }, intervalMs)
    : undefined
  timer?.unref()
  return {
    watch (socket) {
      if (!timer) return
      alive.set(socket, true)
      socket.on('pong', () => { if (alive.has(socket)) alive.set(socket, true) })
      socket.on('close', () => alive.delete(socket))
    },
    stop () { clearInterval(timer) }
  }
}
