/** One timer for all upstream streams: a min-heap by due time, so 60k tokens/s cost one wake-up per millisecond, not one timer each. */
import type { ServerResponse } from 'node:http'
import { nowMs } from './token-codec.js'

export interface Stream {
  res: ServerResponse
  /** Next token to emit. */
  seq: number
  total: number
  arrivalMs: number
  dueMs: number
  intervalMs: number
  usage: boolean
  /** Set when the client went away: the stream is dropped at its next turn. */
  done: boolean
}

const BIN_MS = 0.1
const BINS = 20_001

export function createStreamScheduler ({ emit }: { emit: (s: Stream, now: number) => void }) {
  const heap: Stream[] = []
  let timer: NodeJS.Timeout | undefined
  let timerDue = Infinity
  let tokens = 0
  let active = 0
  const late = new Uint32Array(BINS)

  const up = (i: number) => {
    const s = heap[i]
    while (i > 0) {
      const p = (i - 1) >> 1
      if (heap[p].dueMs <= s.dueMs) break
      heap[i] = heap[p]; i = p
    }
    heap[i] = s
  }
  const down = (i: number) => {
    const n = heap.length
    const s = heap[i]
    for (;;) {
      let c = 2 * i + 1
      if (c >= n) break
      if (c + 1 < n && heap[c + 1].dueMs < heap[c].dueMs) c++
      if (heap[c].dueMs >= s.dueMs) break
      heap[i] = heap[c]; i = c
    }
    heap[i] = s
  }
  const pop = (): Stream => {
    const top = heap[0]
    const last = heap.pop() as Stream
    if (heap.length > 0) { heap[0] = last; down(0) }
    return top
  }
  const push = (s: Stream) => { heap.push(s); up(heap.length - 1) }

  const arm = () => {
    if (heap.length === 0) return
    const due = heap[0].dueMs
    if (timer !== undefined && due >= timerDue) return
    if (timer !== undefined) clearTimeout(timer)
    timerDue = due
    timer = setTimeout(tick, Math.max(0, due - nowMs()))
  }

  function tick () {
    timer = undefined
    timerDue = Infinity
    let now = nowMs()
    while (heap.length > 0 && heap[0].dueMs <= now + 0.25) {
      const s = pop()
      if (s.done) { active--; continue }
      now = nowMs()
      const lateMs = Math.max(0, now - s.dueMs)
      late[Math.min(BINS - 1, Math.floor(lateMs / BIN_MS))]++
      emit(s, now)
      tokens++
      s.seq++
      if (s.seq < s.total && !s.done) {
        s.dueMs += s.intervalMs
        push(s)
      } else {
        s.done = true
        active--
      }
    }
    arm()
  }

  const percentile = (q: number): number => {
    let total = 0
    for (let i = 0; i < BINS; i++) total += late[i]
    if (total === 0) return 0
    let seen = 0
    for (let i = 0; i < BINS; i++) {
      seen += late[i]
      if (seen >= q * total) return i * BIN_MS
    }
    return (BINS - 1) * BIN_MS
  }

  return {
    add (s: Stream) { active++; push(s); arm() },
    /** Counters since the last reset. */
    stats (reset = true) {
      let max = 0
      for (let i = BINS - 1; i >= 0; i--) if (late[i] > 0) { max = i * BIN_MS; break }
      const out = { streamsActive: active, tokensEmitted: tokens, lateP99Ms: percentile(0.99), lateMaxMs: max }
      if (reset) { late.fill(0); tokens = 0 }
      return out
    },
    stop () { if (timer !== undefined) clearTimeout(timer); heap.length = 0 }
  }
}
