/**
 * Cluster mode under test (DESIGN §11): real server processes on one Postgres and one Redis, and clients that roam
 * between them the way a plain round-robin load balancer would send them, resuming with `?after` after every close.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import pg from 'pg'
import { WebSocket } from 'ws'
import type { Frame } from './app.js'
import { startServerProcess, type ServerProcess } from './server-process.js'

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A redis-server of the test's own on a free port, or on `port` again (for tests that kill or pause it). */
export async function startRedis (port?: number): Promise<{ url: string; child: ChildProcess; port: number; stop: () => Promise<void> }> {
  port ??= await freePort()
  const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  for (let i = 0; i < 100 && !(await answersPing(port)); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  return {
    url: `redis://127.0.0.1:${port}`,
    child,
    port,
    stop: async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await once(child, 'exit') } }
  }
}

/** True once a Redis on `port` answers PING (spoken over a plain socket: no redis-cli needed). */
async function answersPing (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('PING\r\n'))
    socket.setTimeout(500, () => { socket.destroy(); resolve(false) })
    socket.once('data', (data) => { socket.destroy(); resolve(data.toString().startsWith('+PONG')) })
    socket.once('error', () => resolve(false))
  })
}

export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** JSON with object keys sorted, so that equal events compare equal as text. */
export function canonical (value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v)
}

/** Every stored event of a session, straight from Postgres, in seq order. */
export async function storedEvents (url: string, sessionId: string): Promise<Frame[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<{ payload: Frame }>('select payload from session_events where session_id = $1 order by seq', [sessionId])).rows.map((r) => r.payload)
  } finally {
    await client.end()
  }
}

/** The stored events once `done` holds for them (the writer stores a moment after frames leave); throws after `timeoutMs`. */
export async function storedWhen (url: string, sessionId: string, done: (events: Frame[]) => boolean, timeoutMs = 10_000): Promise<Frame[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const events = await storedEvents(url, sessionId)
    if (done(events)) return events
    if (Date.now() > deadline) throw new Error(`${sessionId}: the store never got there; it holds ${JSON.stringify(events.map((e) => e.type))}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Resolves once GET /health/ready answers 200 (start-up recovery done). */
export async function whenReady (server: ServerProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try { if ((await fetch(`${server.address}/health/ready`)).status === 200) return } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`not ready within ${timeoutMs} ms:\n${server.output().slice(-3000)}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** One instance of a cluster: restartable under the same INSTANCE_ID on a new port. */
export interface Instance {
  readonly id: string
  server: ServerProcess
  /** Every process this instance ran (for their output). */
  readonly runs: ServerProcess[]
  alive: boolean
}

export async function startInstance (id: string, env: Record<string, string>): Promise<Instance> {
  const server = await startServerProcess({ INSTANCE_ID: id, ...env })
  await whenReady(server)
  return { id, server, runs: [server], alive: true }
}

export async function restartInstance (instance: Instance, env: Record<string, string>): Promise<void> {
  const server = await startServerProcess({ INSTANCE_ID: instance.id, ...env })
  await whenReady(server)
  instance.server = server
  instance.runs.push(server)
  instance.alive = true
}

/**
 * A client of one session that keeps one socket open through whatever happens to instances: on any close but its
 * own it reconnects (after `retryMs`) to the next live instance in `pick` order, resuming after the last seq it
 * saw. It checks as it goes that no seq ever came with two different events and that deltas of one index agree.
 */
export class RoamingClient {
  readonly frames: Frame[] = []
  /** seq → the event's JSON as first received. */
  readonly seen = new Map<number, string>()
  readonly conflicts: string[] = []
  /** Close codes of every socket it lost, in order. */
  readonly closes: number[] = []
  /** Sockets opened (1 + reconnects). */
  connects = 0
  lastSeq = 0
  private ws: WebSocket | null = null
  private stopped = false
  private waiters: Array<() => void> = []
  private readonly deltas = new Map<string, Map<number, string>>()
  private queue: string[] = []

  constructor (
    readonly sessionId: string,
    private readonly instances: () => Instance[],
    private next: number,
    private readonly retryMs = 100
  ) {}

  /** The instance the current socket is on. */
  on: Instance | null = null

  async start (): Promise<void> {
    this.open()
    await this.waitFor((f) => f.type === 'session')
  }

  private open (): void {
    if (this.stopped) return
    const live = this.instances().filter((i) => i.alive)
    if (live.length === 0) { setTimeout(() => this.open(), this.retryMs); return }
    const instance = live[this.next++ % live.length]
    this.on = instance
    const ws = new WebSocket(instance.server.wsUrl(this.sessionId, this.lastSeq > 0 ? this.lastSeq : undefined))
    this.ws = ws
    this.connects++
    ws.on('open', () => {
      for (const data of this.queue.splice(0)) ws.send(data)
    })
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame
      this.observe(frame)
      this.frames.push(frame)
      this.wake()
    })
    ws.on('error', () => { /* the close follows */ })
    ws.on('close', (code) => {
      if (this.ws !== ws) return
      this.ws = null
      this.closes.push(code)
      this.wake()
      if (!this.stopped) setTimeout(() => this.open(), this.retryMs)
    })
  }

  private observe (frame: Frame): void {
    if (typeof frame.seq === 'number') {
      // Keys sorted: an event replayed from Postgres (jsonb) has its keys in another order than when it was broadcast.
      const text = canonical(frame)
      const before = this.seen.get(frame.seq)
      if (before !== undefined && before !== text) this.conflicts.push(`seq ${frame.seq}: ${before} then ${text}`)
      if (before === undefined) this.seen.set(frame.seq, text)
      this.lastSeq = Math.max(this.lastSeq, frame.seq)
    }
    if (frame.type === 'delta') {
      const turn = this.deltas.get(frame.turnId as string) ?? new Map<number, string>()
      this.deltas.set(frame.turnId as string, turn)
      const before = turn.get(frame.index as number)
      if (before !== undefined && before !== frame.text) this.conflicts.push(`delta ${String(frame.turnId)}#${String(frame.index)} differs`)
      turn.set(frame.index as number, frame.text as string)
    }
  }

  /** The text of a turn as its deltas told it. */
  deltaText (turnId: string): string {
    const turn = this.deltas.get(turnId)
    if (!turn) return ''
    return [...turn.keys()].sort((a, b) => a - b).map((i) => turn.get(i)).join('')
  }

  /** Sends now, or as soon as the next socket opens. */
  send (frame: unknown): void {
    const data = JSON.stringify(frame)
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(data)
    else this.queue.push(data)
  }

  /** Stored events received, by seq (each once), ascending. */
  storedView (): Frame[] {
    return [...this.seen.entries()].sort(([a], [b]) => a - b).map(([, text]) => JSON.parse(text) as Frame)
  }

  async waitFor (match: (f: Frame) => boolean, { from = 0, timeoutMs = 20_000 } = {}): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const hit = this.frames.slice(from).find(match)
      if (hit) return hit
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${this.sessionId}: timed out; last frames: ${JSON.stringify(this.frames.slice(-12).map((f) => f.type === 'error' ? `error:${String(f.code)}` : f.type))} closes ${JSON.stringify(this.closes)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1_000))
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    const ws = this.ws
    this.ws = null
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      ws.close()
      await once(ws, 'close')
    }
  }

  private wake (): void { for (const w of this.waiters.splice(0)) w() }
}
