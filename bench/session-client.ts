/** One benchmark session over a `ws` client: connect, run turns, time every token and check it arrived once, in order. */
import { once } from 'node:events'
import WebSocket from 'ws'
import { createSample } from './stats.js'
import { createTokenSplitter, decodeToken, nowMs } from './token-codec.js'

/** Counters shared by every session of one run. */
export function createTally () {
  return {
    latency: createSample(1 << 16),
    ttft: createSample(1024),
    ack: createSample(1024),
    tokensReceived: 0,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    garbage: 0,
    turnsDone: 0,
    contentMismatch: 0,
    refused: 0,
    closedEarly: 0,
    pongs: 0,
    errors: {} as Record<string, number>
  }
}
export type Tally = ReturnType<typeof createTally>

const countError = (t: Tally, key: string) => { t.errors[key] = (t.errors[key] ?? 0) + 1 }

interface TurnState {
  tokens: number
  sentMs: number
  turnId?: string
  seen: Uint8Array
  deltas: string[]
  lastSeq: number
  split: (text: string) => string[]
  done: () => void
}

/**
 * Opens `url` and resolves once the server's `session` frame arrived (undefined on refusal or timeout). `token`, when
 * given, is presented as `?access_token=` (what the browser page does); without it the URL is used as it is.
 */
export async function openSession ({ url, tally, timeoutMs, token }: { url: string, tally: Tally, timeoutMs: number, token?: string }) {
  const ws = new WebSocket(token === undefined ? url : `${url}${url.includes('?') ? '&' : '?'}access_token=${token}`, { perMessageDeflate: false })
  let turn: TurnState | undefined
  let closed = false

  const finishTurn = (t: TurnState) => {
    let unique = 0
    for (let i = 0; i < t.seen.length; i++) unique += t.seen[i] > 0 ? 1 : 0
    tally.lost += t.tokens - unique
    turn = undefined
    t.done()
  }

  const onFrame = (raw: WebSocket.RawData) => {
    const now = nowMs()
    let frame: Record<string, unknown>
    try { frame = JSON.parse(String(raw)) as Record<string, unknown> } catch { countError(tally, 'bad_json'); return }
    const t = turn
    switch (frame.type) {
      case 'delta': {
        if (!t) { countError(tally, 'delta_outside_turn'); return }
        t.turnId ??= frame.turnId as string
        if (frame.turnId !== t.turnId) { countError(tally, 'delta_wrong_turn'); return }
        const index = frame.index as number
        if (t.deltas[index] !== undefined) tally.duplicated++
        t.deltas[index] = frame.text as string
        for (const token of t.split(frame.text as string)) {
          const d = decodeToken(token, now)
          if (!d) { tally.garbage++; continue }
          if (d.seq >= t.tokens || t.seen[d.seq] > 0) { tally.duplicated++; continue }
          t.seen[d.seq] = 1
          tally.tokensReceived++
          tally.latency.push(now - d.emitMs)
          if (d.seq < t.lastSeq) tally.outOfOrder++
          t.lastSeq = d.seq
          if (d.seq === 0 && d.arrivalMs !== undefined) tally.ttft.push(d.arrivalMs - t.sentMs + now - d.emitMs)
        }
        return
      }
      case 'user_message':
        if (t) { t.turnId = frame.turnId as string; tally.ack.push(now - t.sentMs) }
        return
      case 'assistant_message': {
        if (!t) { countError(tally, 'assistant_outside_turn'); return }
        let joined = ''
        for (let i = 0; i < t.deltas.length; i++) joined += t.deltas[i] ?? '\u0000'
        if (joined !== frame.content) tally.contentMismatch++
        if (frame.finishReason !== 'stop') countError(tally, `finish_${String(frame.finishReason)}`)
        tally.turnsDone++
        finishTurn(t)
        return
      }
      case 'error':
        countError(tally, String(frame.code))
        return
      case 'pong':
        tally.pongs++
        return
      default:
    }
  }

  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('session frame timeout')); ws.terminate() }, timeoutMs)
    ws.once('message', (raw) => {
      clearTimeout(timer)
      const first = JSON.parse(String(raw)) as { type?: string }
      if (first.type !== 'session') { reject(new Error(`first frame ${String(first.type)}`)); return }
      ws.on('message', onFrame)
      resolve()
    })
    ws.once('close', (code) => { clearTimeout(timer); reject(new Error(`closed ${code} before session`)) })
    ws.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
  ws.on('error', () => {})
  try {
    await ready
  } catch (err) {
    tally.refused++
    countError(tally, `connect: ${(err as Error).message.slice(0, 60)}`)
    return undefined
  }
  ws.on('close', () => {
    closed = true
    if (turn) { tally.closedEarly++; finishTurn(turn) }
  })

  return {
    ws,
    /** Sends one user message and resolves when its turn closed (assistant_message, socket close, or the deadline). */
    async turn ({ content, tokens, deadlineMs }: { content: string, tokens: number, deadlineMs: number }) {
      if (closed) { tally.lost += tokens; return }
      await new Promise<void>((resolve) => {
        const t: TurnState = {
          tokens, sentMs: nowMs(), seen: new Uint8Array(tokens), deltas: [], lastSeq: -1, split: createTokenSplitter(), done: resolve
        }
        const timer = setTimeout(() => { if (turn === t) { countError(tally, 'turn_timeout'); finishTurn(t) } }, Math.max(0, deadlineMs - Date.now()))
        t.done = () => { clearTimeout(timer); resolve() }
        turn = t
        ws.send(JSON.stringify({ type: 'user_message', content }))
      })
    },
    async close () {
      if (closed) return
      const done = once(ws, 'close')
      ws.close(1000)
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 5000).unref())])
      if (!closed) ws.terminate()
    }
  }
}
export type BenchSession = NonNullable<Awaited<ReturnType<typeof openSession>>>
