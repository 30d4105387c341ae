/** Bench token format: each upstream token names its sequence number and emit time so the client can time it. */

/** One clock on one machine: wall-clock origin plus monotonic time, comparable across processes (checked at run time). */
export const nowMs = (): number => performance.timeOrigin + performance.now()

/** Emit times travel as microseconds modulo 36^7 (≈ 21.7 h) in base 36: at most 7 characters. */
const WRAP_US = 36 ** 7

const encodeUs = (ms: number): string => (Math.round(ms * 1000) % WRAP_US).toString(36)

/** Undo the wrap against the receiver's clock (valid while the latency is below 21 h). */
const decodeUs = (text: string, receiveMs: number): number => {
  const recvUs = Math.round(receiveMs * 1000)
  const enc = parseInt(text, 36)
  const back = (((recvUs - enc) % WRAP_US) + WRAP_US) % WRAP_US
  return (recvUs - back) / 1000
}

/**
 * Token `seq` emitted at `emitMs`: `"<seq>.<emit> "`, and token 0 also carries the time the upstream
 * received the request (`"0.<emit>.<arrival> "`) so the client can split the added time to first token.
 */
export function encodeToken ({ seq, emitMs, arrivalMs }: { seq: number, emitMs: number, arrivalMs?: number }): string {
  const head = `${seq.toString(36)}.${encodeUs(emitMs)}`
  return arrivalMs === undefined ? `${head} ` : `${head}.${encodeUs(arrivalMs)} `
}

export interface DecodedToken {
  seq: number
  emitMs: number
  arrivalMs?: number
}

/** Decode one token (without its trailing space); undefined when it is not a bench token. */
export function decodeToken (token: string, receiveMs: number): DecodedToken | undefined {
  const parts = token.split('.')
  if (parts.length < 2 || parts.length > 3) return undefined
  const seq = parseInt(parts[0], 36)
  if (!Number.isInteger(seq) || seq < 0) return undefined
  const emitMs = decodeUs(parts[1], receiveMs)
  if (!Number.isFinite(emitMs)) return undefined
  return parts.length === 3 ? { seq, emitMs, arrivalMs: decodeUs(parts[2], receiveMs) } : { seq, emitMs }
}

/** Splits streamed text into whole tokens; keeps a partial tail for the next piece (deltas may coalesce or split tokens). */
export function createTokenSplitter (): (text: string) => string[] {
  let tail = ''
  return (text) => {
    const buf = tail + text
    const last = buf.lastIndexOf(' ')
    if (last < 0) { tail = buf; return [] }
    tail = buf.slice(last + 1)
    return buf.slice(0, last).split(' ')
  }
}
