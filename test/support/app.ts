/** Test helpers: a real listening app on 127.0.0.1:0 and a `ws` client that records frames and awaits them. */
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { WebSocket, type ClientOptions } from 'ws'
import { buildApp } from '../../src/app.js'
import { testConfig, type Config } from '../../src/config.js'
import type { ServiceDeps } from '../../src/plugins/services.js'

export interface RunningApp {
  app: FastifyInstance
  config: Config
  baseUrl: string
  wsUrl: (sessionId: string, after?: number) => string
  close: () => Promise<void>
}

/** `logger`: Fastify logger options (e.g. `{ level: 'trace', stream }` to capture lines); default none. */
export async function startApp ({ env = {}, deps, logger = false }: { env?: Record<string, string>; deps?: ServiceDeps; logger?: FastifyServerOptions['logger'] } = {}): Promise<RunningApp> {
  const config = testConfig(env)
  const app = await buildApp({ config, deps, logger })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const ws = address.replace(/^http/, 'ws')
  return {
    app,
    config,
    baseUrl: address,
    wsUrl: (id, after) => `${ws}/ws/session/${id}${after === undefined ? '' : `?after=${after}`}`,
    close: () => app.close()
  }
}

// Frames are loosely typed in tests on purpose: assertions check the wire, not our own types.
export type Frame = Record<string, any> & { type: string }

/** A WebSocket client that records frames, never throws on socket errors, and awaits frames by predicate or count. */
export class TestClient {
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
  static async connect (url: string, opts: ClientOptions = {}): Promise<TestClient> {
    const ws = new WebSocket(url, opts)
    const client = new TestClient(ws)
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

/** Concatenates a turn's delta texts by index, checking no index is missing or repeated with other text. */
export function joinDeltas (frames: Frame[], turnId: string): string {
  const byIndex = new Map<number, string>()
  for (const f of frames) {
    if (f.type !== 'delta' || f.turnId !== turnId) continue
    const prev = byIndex.get(f.index)
    if (prev !== undefined && prev !== f.text) throw new Error(`delta ${f.index} differs between copies`)
    byIndex.set(f.index, f.text)
  }
  const parts: string[] = []
  for (let i = 0; i < byIndex.size; i++) {
    const text = byIndex.get(i)
    if (text === undefined) throw new Error(`delta index ${i} missing`)
    parts.push(text)
  }
  return parts.join('')
}

/** Polls `fn` until it returns a truthy value (for state that changes without an event to await). */
export async function eventually<T> (fn: () => Promise<T> | T, { timeoutMs = 10_000, intervalMs = 20 } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await fn()
      if (value) return value as NonNullable<T>
    } catch (err) { last = err }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
