/** The session socket: connect with ?after=<last seq seen>, heartbeat, reconnect with exponential backoff and jitter. */

const BASE_DELAY_MS = 500
const MAX_DELAY_MS = 15_000
const PING_EVERY_MS = 25_000
const PONG_TIMEOUT_MS = 10_000

/** Close codes after which reconnecting cannot help (DESIGN §4): 4401 needs a new sign-in, 4403 another chat. */
const FATAL_CLOSES = new Set([1008, 4400, 4401, 4403])

/**
 * createConnection({ sessionId, getAfter, getToken, onFrame, onStatus, onClose })
 * - getAfter(): the seq to resume after (0 on first load rebuilds the whole conversation)
 * - getToken(): the access token to present (null: none); read at every (re)connect, so a refreshed one is used
 * - onFrame(frame): every parsed server frame, in order
 * - onStatus({ state: 'connecting'|'open'|'waiting'|'failed'|'closed', retryAt?, code? })
 * - onClose({ code, reason, willRetry }): the socket closed (not called after close())
 */
export function createConnection ({ sessionId, getAfter, getToken = () => null, onFrame, onStatus, onClose }) {
  let ws = null
  let attempt = 0
  let retryTimer = null
  let pingTimer = null
  let pongTimer = null
  let stopped = false

  const url = () => {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const query = new URLSearchParams({ after: String(getAfter()) })
    // Browsers cannot set headers on a WebSocket: the token rides in the query (the server redacts it from logs).
    const token = getToken()
    if (token) query.set('access_token', token)
    return `${proto}//${location.host}/ws/session/${encodeURIComponent(sessionId)}?${query}`
  }

  function open () {
    clearTimeout(retryTimer)
    retryTimer = null
    if (stopped) return
    onStatus({ state: 'connecting', attempt })
    const sock = new WebSocket(url())
    ws = sock
    sock.addEventListener('message', (event) => {
      if (sock !== ws) return
      let frame
      try { frame = JSON.parse(event.data) } catch { return }
      if (frame?.type === 'session') {
        attempt = 0
        onStatus({ state: 'open' })
        startHeartbeat()
      }
      if (frame?.type === 'pong') { clearTimeout(pongTimer); return }
      onFrame(frame)
    })
    sock.addEventListener('close', (event) => {
      if (sock !== ws) return
      ws = null
      stopHeartbeat()
      if (stopped) return
      const willRetry = !FATAL_CLOSES.has(event.code)
      onClose({ code: event.code, reason: event.reason, willRetry })
      if (willRetry) schedule()
      else onStatus({ state: 'failed', code: event.code })
    })
  }

  function schedule () {
    // Full jitter over the upper half: spreads a server restart's reconnect storm.
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt)
    const delay = ceiling / 2 + Math.random() * ceiling / 2
    attempt++
    onStatus({ state: 'waiting', retryAt: Date.now() + delay })
    retryTimer = setTimeout(open, delay)
  }

  function startHeartbeat () {
    stopHeartbeat()
    pingTimer = setInterval(() => {
      if (!send({ type: 'ping' })) return
      clearTimeout(pongTimer)
      // A half-open TCP connection never fires close: drop it ourselves and resume.
      pongTimer = setTimeout(() => ws?.close(4000, 'pong timeout'), PONG_TIMEOUT_MS)
    }, PING_EVERY_MS)
  }

  function stopHeartbeat () {
    clearInterval(pingTimer)
    clearTimeout(pongTimer)
  }

  /** Sends a client frame; false when the socket is not open. */
  function send (frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false
    ws.send(JSON.stringify(frame))
    return true
  }

  /** Reconnect now (the network came back, or a gap in seq asks for a resume). */
  function reconnectNow () {
    if (stopped) return
    if (ws) {
      const old = ws
      ws = null
      stopHeartbeat()
      old.close(4000, 'resync')
    }
    attempt = 0
    open()
  }

  const onOnline = () => { if (!ws) reconnectNow() }
  window.addEventListener('online', onOnline)

  open()

  return {
    send,
    reconnectNow,
    isOpen: () => Boolean(ws && ws.readyState === WebSocket.OPEN),
    close () {
      stopped = true
      clearTimeout(retryTimer)
      stopHeartbeat()
      window.removeEventListener('online', onOnline)
      const sock = ws
      ws = null
      sock?.close(1000, 'bye')
      onStatus({ state: 'closed' })
    }
  }
}
