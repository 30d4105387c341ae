/** Test helpers: a real listening app on 127.0.0.1:0 and a `ws` client that records frames and awaits them. */
import type { FastifyInstance } from 'fastify'
import { WebSocket } from 'ws'
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

export async function startApp ({ env = {}, deps }: { env?: Record<string, string>; deps?: ServiceDeps } = {}): Promise<RunningApp> {
  const config = testConfig(env)
  const app = await buildApp({ config, deps, logger: false })
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

/** A WebSocket client that keeps every frame it received, in order. */
export class TestClient {
  readonly frames: Frame[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  private waiters: Array<() => void> = []

  private constructor (readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      this.frames.push(isBinary ? { type: '__binary__' } : JSON.parse(data.toString()))
      for (const wake of this.waiters.splice(0)) wake()
    })
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() })
        for (const wake of this.waiters.splice(0)) wake()
      })
    })
  }

  static async connect (url: string, opts: { origin?: string } = {}): Promise<TestClient> {
    const ws = new WebSocket(url, opts.origin ? { origin: opts.origin } : {})
    const client = new TestClient(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    })
    return client
  }

  send (frame: unknown): void { this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)) }

  /** Resolves with the first frame (from index `from`) matching `pred`; rejects after `timeoutMs`. */
  async waitFor (pred: (f: Frame) => boolean, { from = 0, timeoutMs = 10_000 } = {}): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.frames.slice(from).find(pred)
      if (found) return found
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed while waiting; frames: ${JSON.stringify(this.frames.map((f) => f.type))}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for a frame; got: ${JSON.stringify(this.frames.map((f) => f.type))}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  /** Waits for the assistant_message closing `turnId` (or the next one). */
  waitTurnEnd (turnId?: string, timeoutMs = 15_000): Promise<Frame> {
    return this.waitFor((f) => f.type === 'assistant_message' && (turnId === undefined || f.turnId === turnId), { timeoutMs })
  }

  ofType (type: string): Frame[] { return this.frames.filter((f) => f.type === type) }

  async close (): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close()
    await this.closed
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
