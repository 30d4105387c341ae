/** One open session: applies server frames to the view (dedupe by seq, deltas merged by turn and index) and sends user input. */
import { createConnection } from './connection.js'
import { errorText, closeText, REFUSALS } from './errors.js'
import { newId } from './dom.js'

/**
 * openChat({ sessionId, view, getToken?, on }) where `on` has
 * session(frame), status(status), running(turnId|null), userMessage(event), turnDone(event), notice({ text, level?, retryAfterMs?, restore? }),
 * and optionally fatal(code) → true when it handled a close that ends the chat (4401, 4403) itself.
 */
export function openChat ({ sessionId, view, getToken, on }) {
  let lastSeq = 0 // highest stored seq applied: the resume point
  let replayUntil = 0 // seqs up to the session frame's lastSeq are history, not live
  let runningTurnId = null
  let limits = null
  let resyncs = 0
  const deltas = new Map() // turnId → { parts: string[], done: boolean }
  const thoughts = new Map() // turnId → reasoning pieces by index, like deltas
  const pending = new Map() // clientId → content, until the stored user_message comes back

  const connection = createConnection({
    sessionId,
    getAfter: () => lastSeq,
    getToken,
    onStatus: (status) => on.status(status),
    onFrame: apply,
    onClose ({ code, willRetry }) {
      if (!willRetry && on.fatal?.(code)) return
      const text = closeText(code, limits)
      if (code === 1009) {
        // The frame that was too large is the newest pending one: give it back to edit.
        const [clientId, content] = [...pending].pop() ?? []
        if (clientId) { pending.delete(clientId); view.dropPending(clientId) }
        on.notice({ text, restore: content })
      } else if (text) {
        on.notice({ text, level: willRetry ? 'info' : 'error' })
      }
    }
  })

  function setRunning (turnId) {
    if (runningTurnId === turnId) return
    if (runningTurnId) view.setRunning(runningTurnId, false)
    runningTurnId = turnId
    if (turnId) view.setRunning(turnId, true)
    on.running(turnId)
  }

  function turnDeltas (turnId) {
    let d = deltas.get(turnId)
    if (!d) { d = { parts: [], done: false }; deltas.set(turnId, d) }
    return d
  }

  function apply (frame) {
    if (frame.type === 'session') return onSession(frame)
    if (frame.type === 'delta') return onDelta(frame)
    if (frame.type === 'reasoning') return onReasoning(frame)
    if (frame.type === 'error' && frame.seq === undefined) return onRefusal(frame)
    if (typeof frame.seq !== 'number') return

    // The clientId echo can be a repeat (an idempotent resend): settle the pending entry first.
    if (frame.type === 'user_message' && frame.clientId) pending.delete(frame.clientId)
    if (frame.seq <= lastSeq) return
    if (frame.seq > lastSeq + 1 && resyncs < 3) {
      // A gap means we missed stored events: resume from what we have rather than guess.
      resyncs++
      connection.reconnectNow()
      return
    }
    resyncs = 0
    lastSeq = frame.seq
    onStored(frame)
  }

  function onSession (frame) {
    limits = frame.limits
    if (frame.reset) {
      // The server lost events past its last seq and replays from the start.
      lastSeq = 0
      deltas.clear()
      thoughts.clear()
      setRunning(null)
      view.clear()
      for (const [clientId, content] of pending) view.addPending(clientId, content)
    }
    replayUntil = frame.lastSeq
    on.session(frame)
    if (runningTurnId && runningTurnId !== frame.runningTurnId) setRunning(null)
    if (frame.runningTurnId) setRunning(frame.runningTurnId)
    // Messages sent into a dying socket: the same clientId makes the resend idempotent.
    for (const [clientId, content] of pending) connection.send({ type: 'user_message', content, clientId })
  }

  function onDelta (frame) {
    const d = turnDeltas(frame.turnId)
    if (d.done || d.parts[frame.index] !== undefined) return
    d.parts[frame.index] = frame.text
    // Only the contiguous prefix is shown: a missing index is waited for, never skipped.
    let text = ''
    for (let i = 0; i < d.parts.length && d.parts[i] !== undefined; i++) text += d.parts[i]
    if (!runningTurnId) setRunning(frame.turnId)
    view.setText(frame.turnId, text)
  }

  function onReasoning (frame) {
    if (turnDeltas(frame.turnId).done) return
    let pieces = thoughts.get(frame.turnId)
    if (!pieces) { pieces = []; thoughts.set(frame.turnId, pieces) }
    if (pieces[frame.index] !== undefined) return
    pieces[frame.index] = frame.text
    let text = ''
    for (let i = 0; i < pieces.length && pieces[i] !== undefined; i++) text += pieces[i]
    if (!runningTurnId) setRunning(frame.turnId)
    view.setReasoning(frame.turnId, text)
  }

  function onStored (event) {
    switch (event.type) {
      case 'user_message':
        view.userMessage(event)
        on.userMessage?.(event)
        if (event.seq > replayUntil || event.turnId === runningTurnId) setRunning(event.turnId)
        break
      case 'tool_call':
        view.toolCall(event)
        break
      case 'tool_result':
        view.toolResult(event)
        break
      case 'approval_request':
        view.approvalRequest(event)
        break
      case 'approval':
        view.approval(event)
        break
      case 'assistant_message':
        turnDeltas(event.turnId).done = true
        thoughts.delete(event.turnId)
        view.finish(event)
        if (runningTurnId === event.turnId) setRunning(null)
        if (event.seq > replayUntil) on.turnDone(event)
        break
      case 'error':
        view.turnError(event, errorText(event))
        break
      default:
        break
    }
  }

  function onRefusal (frame) {
    if (frame.code === 'not_running') return // the turn ended before the cancel arrived
    if (frame.code === 'not_pending') return // another tab answered first: its approval event shows the outcome
    let restore
    // With a turnId the message was accepted and will be stored (then shown), just not answered: keep it —
    // unless the store refused it for good (not retryable): then it is gone, and goes back to the composer.
    const accepted = frame.code === 'store_unavailable' && frame.turnId && frame.retryable !== false
    if (REFUSALS.has(frame.code) && !accepted && pending.size > 0) {
      const [clientId, content] = [...pending].pop()
      pending.delete(clientId)
      view.dropPending(clientId)
      restore = content
    }
    on.notice({ text: errorText(frame), retryAfterMs: frame.retryAfterMs, restore, level: 'error' })
  }

  return {
    get limits () { return limits },
    get running () { return runningTurnId },
    isOpen: () => connection.isOpen(),
    /** Sends a user message; false when it could not go out. */
    send (content) {
      const clientId = newId()
      pending.set(clientId, content)
      view.addPending(clientId, content)
      if (!connection.send({ type: 'user_message', content, clientId })) {
        // Kept pending: it is resent with the same clientId once the socket is back.
        on.notice({ text: 'Not connected: your message will be sent when the connection is back.', level: 'info' })
      }
      return true
    },
    /** Answers an approval request (the first answer from any tab decides). */
    approve ({ callId, approved, scope }) {
      return connection.send({ type: 'tool_approval', callId, approved, scope })
    },
    stop () {
      if (!runningTurnId) return false
      return connection.send({ type: 'cancel', turnId: runningTurnId })
    },
    /** Hands the live socket a refreshed token (the server answers nothing when it takes it); a closed socket uses it on reconnect. */
    reauth (token) { return connection.send({ type: 'auth', token }) },
    close () { connection.close() }
  }
}
