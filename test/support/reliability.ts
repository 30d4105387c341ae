/** Helpers for the reliability tests: a ws client with raw options, stored-log reads, a model tap, a seeded PRNG. */
import { EventEmitter } from 'node:events'
import { WebSocket, type ClientOptions } from 'ws'
import type { ChatModel, ModelEvent } from '../../src/llm/types.js'
import type { Frame, RunningApp } from './app.js'

/** A WebSocket client that records frames, never throws on socket errors, and awaits frames by predicate or count. */
export class WireClient {
  readonly frames: Frame[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  readonly errors: Error[] = []
  private waiters: Array<() => void> = []

  private constructor (readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      this.frames.push(isBinary ? { type: '__binary__' } : JSON.parse(data.toString()))
      this.wake()
    })
    // A server that closes while we still write (1009) may reset the connection: that is not a test failure.
    ws.on('error', (err) => { this.errors.push(err) })
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => { resolve({ code, reason: reason.toString() }); this.wake() })
    })
  }

  /** Opens a socket (ws ClientOptions pass through, e.g. `{ autoPong: false }` or `{ origin }`). */
  static async connect (url: string, opts: ClientOptions = {}): Promise<WireClient> {
    const ws = new WebSocket(url, opts)
    const client = new WireClient(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    })
    return client
  }

  get open (): boolean { return this.ws.readyState === WebSocket.OPEN }

  send (frame: unknown): void { this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)) }

  /** Resolves once `pred` holds for the frames (from `from`); rejects after `timeoutMs` or if the socket closes first. */
  async until<T> (pred: (frames: Frame[]) => T | undefined | false, { from = 0, timeoutMs = 10_000 } = {}): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const hit = pred(this.frames.slice(from))
      if (hit) return hit
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed while waiting; frames: ${this.summary()}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out; frames: ${this.summary()}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  waitFor (match: (f: Frame) => boolean, opts: { from?: number; timeoutMs?: number } = {}): Promise<Frame> {
    return this.until((fs) => fs.find(match), opts)
  }

  /** Waits until `n` frames (from `from`) match, and returns them. */
  waitCount (n: number, match: (f: Frame) => boolean = () => true, opts: { from?: number; timeoutMs?: number } = {}): Promise<Frame[]> {
    return this.until((fs) => { const hits = fs.filter(match); return hits.length >= n ? hits.slice(0, n) : undefined }, opts)
  }

  waitTurnEnd (turnId?: string, timeoutMs = 15_000): Promise<Frame> {
    return this.waitFor((f) => f.type === 'assistant_message' && (turnId === undefined || f.turnId === turnId), { timeoutMs })
  }

  ofType (type: string): Frame[] { return this.frames.filter((f) => f.type === type) }

  /** Stored events received (frames with a seq), in arrival order. */
  stored (): Frame[] { return this.frames.filter((f) => typeof f.seq === 'number') }

  async close (code?: number): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close(code)
    await this.closed
  }

  terminate (): Promise<{ code: number; reason: string }> {
    this.ws.terminate()
    return this.closed
  }

  private summary (): string {
    return JSON.stringify(this.frames.slice(-30).map((f) => (f.type === 'error' ? `error:${f.code}` : f.type)))
  }

  private wake (): void { for (const w of this.waiters.splice(0)) w() }
}

/** Every stored event of a session through the REST API (paginated). */
export async function storedEvents (server: RunningApp, sessionId: string): Promise<Frame[]> {
  const events: Frame[] = []
  for (;;) {
    const res = await server.app.inject({ url: `/api/session/${sessionId}/events?after=${events.at(-1)?.seq ?? 0}&limit=500` })
    if (res.statusCode === 404) return events
    const page = res.json().events as Frame[]
    events.push(...page)
    if (page.length < 500) return events
  }
}

/** Waits until the writer has stored everything accepted so far, then returns the session's log. */
export async function flushedEvents (server: RunningApp, sessionId: string): Promise<Frame[]> {
  if (!(await server.app.services.writer.flush(10_000))) throw new Error('event writer did not flush within 10 s')
  return storedEvents(server, sessionId)
}

/** The seqs are exactly 1..n. */
export function isDense (events: Frame[]): boolean {
  return events.every((e, i) => e.seq === i + 1)
}

/** A ChatModel that passes everything through and emits each stream event ('event', ModelEvent) as it goes by. */
export function tapModel (inner: ChatModel): { model: ChatModel; events: EventEmitter; texts: () => number } {
  const events = new EventEmitter()
  let texts = 0
  const model: ChatModel = {
    info: inner.info,
    complete: (req) => inner.complete(req),
    async * stream (req) {
      for await (const event of inner.stream(req) as AsyncIterable<ModelEvent>) {
        if (event.type === 'text') texts++
        events.emit('event', event)
        yield event
      }
    }
  }
  return { model, events, texts: () => texts }
}

/** Resolves once the tapped model has streamed `n` text events in all. */
export function textsReach (tap: { events: EventEmitter; texts: () => number }, n: number, timeoutMs = 10_000): Promise<void> {
  if (tap.texts() >= n) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { tap.events.off('event', on); reject(new Error(`model streamed ${tap.texts()} texts, not ${n}`)) }, timeoutMs)
    const on = () => { if (tap.texts() >= n) { clearTimeout(timer); tap.events.off('event', on); resolve() } }
    tap.events.on('event', on)
  })
}

/** mulberry32: a small seeded PRNG so a failing random run can be replayed with its seed. */
export function seededRandom (seed: number): { next: () => number; int: (min: number, max: number) => number; pick: <T>(xs: readonly T[]) => T } {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  return { next, int, pick: (xs) => xs[int(0, xs.length - 1)] }
}

/** Concatenates a turn's deltas by index; throws on a gap or on two copies of an index with different text. */
export function deltaText (frames: Frame[], turnId: string): string {
  const byIndex = new Map<number, string>()
  for (const f of frames) {
    if (f.type !== 'delta' || f.turnId !== turnId) continue
    const prev = byIndex.get(f.index)
    if (prev !== undefined && prev !== f.text) throw new Error(`turn ${turnId}: delta ${f.index} differs between copies`)
    byIndex.set(f.index, f.text)
  }
  const max = Math.max(-1, ...byIndex.keys())
  const parts: string[] = []
  for (let i = 0; i <= max; i++) {
    const text = byIndex.get(i)
    if (text === undefined) throw new Error(`turn ${turnId}: delta index ${i} missing (max ${max})`)
    parts.push(text)
  }
  return parts.join('')
}
