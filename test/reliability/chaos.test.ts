/** Chaos: hundreds of random disconnects across concurrent sessions; every client resumes with after=<last seq> and misses nothing, twice nothing. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { eventually, startApp, type Frame, type RunningApp } from '../support/app.js'
import { flushedEvents, isDense, seededRandom } from '../support/reliability.js'

const SEED = Number(process.env.CHAOS_SEED ?? 0x5eed_2024)
const SESSIONS = 24
const TURNS = 5
const MAX_DISCONNECTS = 16

let server: RunningApp
beforeAll(async () => {
  server = await startApp({
    // WRITER_FLUSH_MS at its maximum widens the window in which a user_message is accepted but not yet durable.
    env: { OFFLINE_TOKEN_DELAY_MS: '2', DISCONNECT_GRACE_MS: '600000', MAX_SOCKETS_PER_SESSION: '16', RATE_MESSAGES_PER_MIN: '1000', WRITER_FLUSH_MS: '50' }
  })
})
afterAll(async () => { await server.close() })

const PROMPTS = ['tell me about resumable streams', 'who is user-7?', 'explain sequence numbers', 'hello there, how are you?']

/** One user of one session: sends TURNS messages, drops its socket at random frames, always comes back with after=<last seq>. */
class ChaosClient {
  readonly seen = new Map<number, Frame>()
  readonly problems: string[] = []
  readonly deltas = new Map<string, Map<number, string>>()
  /** turnId → the assistant_message, and whether it arrived live (so every delta must have been seen). */
  readonly ends = new Map<string, { frame: Frame; live: boolean }>()
  lastSeq = 0
  turnsDone = 0
  disconnects = 0
  connections = 0
  private pending: { clientId: string; content: string; turnId?: string } | null = null
  private ws: WebSocket | null = null
  private finished!: () => void
  readonly done = new Promise<void>((resolve) => { this.finished = resolve })

  constructor (readonly id: string, private readonly rng: ReturnType<typeof seededRandom>) {}

  start (): void { this.connect() }

  close (): void { this.ws?.close() }

  private connect (): void {
    this.connections++
    const ws = new WebSocket(server.wsUrl(this.id, this.lastSeq))
    this.ws = ws
    // Mostly short lives (drops inside replays, right after a send), sometimes long ones (turns that end live).
    const budget = this.disconnects >= MAX_DISCONNECTS ? Infinity : this.rng.next() < 0.7 ? this.rng.int(1, 20) : this.rng.int(20, 120)
    const how = this.rng.pick(['terminate', 'close', 'close-4000'] as const)
    let frames = 0
    let sessionLastSeq = -1
    let replayDone = false
    const resent = new Set<string>()
    let dropped = false

    const maybeSend = () => {
      if (!replayDone || ws.readyState !== WebSocket.OPEN) return
      if (this.pending && this.pending.turnId === undefined) {
        resent.add(this.pending.clientId)
        ws.send(JSON.stringify({ type: 'user_message', content: this.pending.content, clientId: this.pending.clientId }))
      } else if (!this.pending && this.turnsDone < TURNS) {
        const content = `${this.rng.pick(PROMPTS)} (${this.id} #${this.turnsDone})`
        this.pending = { clientId: `${this.id}-m${this.turnsDone}`, content }
        ws.send(JSON.stringify({ type: 'user_message', content, clientId: this.pending.clientId }))
      }
    }

    ws.on('message', (data) => {
      if (dropped) return
      const f = JSON.parse(data.toString()) as Frame
      frames++
      if (f.type === 'session') {
        sessionLastSeq = f.lastSeq
      } else if (f.type === 'delta') {
        const byIndex = this.deltas.get(f.turnId) ?? new Map<number, string>()
        this.deltas.set(f.turnId, byIndex)
        const prev = byIndex.get(f.index)
        if (prev !== undefined && prev !== f.text) this.problems.push(`delta ${f.turnId}#${f.index} differs`)
        byIndex.set(f.index, f.text)
      } else if (f.type === 'error') {
        this.problems.push(`error ${f.code}: ${f.message}`)
      } else if (typeof f.seq === 'number') {
        this.onStored(f, resent)
        if (f.type === 'connected' && f.seq > sessionLastSeq && !replayDone) { replayDone = true; maybeSend() }
        if (f.type === 'assistant_message') {
          this.ends.set(f.turnId, { frame: f, live: replayDone })
          if (this.pending?.turnId === f.turnId) {
            this.pending = null
            this.turnsDone++
            if (this.turnsDone === TURNS) this.finished()
          }
          maybeSend()
        }
      }
      if (frames >= budget && this.turnsDone < TURNS) {
        dropped = true
        this.disconnects++
        if (how === 'terminate') ws.terminate()
        else ws.close(how === 'close' ? 1000 : 4000)
      }
    })
    ws.on('error', () => {})
    ws.on('close', (code) => {
      if (code === 1013 || code === 1011 || code === 1009) this.problems.push(`closed by the server with ${code}`)
      if (this.ws === ws && this.turnsDone < TURNS) this.connect()
    })
  }

  private onStored (f: Frame, resent: Set<string>): void {
    const prior = this.seen.get(f.seq)
    if (prior) {
      // The answer to a resend of a clientId is the stored event again, on purpose: one per resend.
      if (f.type === 'user_message' && resent.delete(f.clientId) && JSON.stringify(prior) === JSON.stringify(f)) return
      this.problems.push(`seq ${f.seq} (${f.type}) received twice`)
      return
    }
    if (f.seq !== this.lastSeq + 1) this.problems.push(`gap: seq ${f.seq} after ${this.lastSeq}`)
    this.seen.set(f.seq, f)
    this.lastSeq = Math.max(this.lastSeq, f.seq)
    if (f.type === 'user_message' && this.pending && f.clientId === this.pending.clientId) this.pending.turnId = f.turnId
  }
}

describe('chaos', () => {
  it(`${SESSIONS} sessions × ${TURNS} turns with random drops: dense logs, every event seen once, deltas = content (seed ${SEED})`, async () => {
    const rng = seededRandom(SEED)
    const clients = Array.from({ length: SESSIONS }, (_, i) => new ChaosClient(`chaos-${SEED}-${i}`, seededRandom(rng.int(1, 2 ** 31))))
    for (const c of clients) c.start()
    await Promise.all(clients.map((c) => c.done))

    const disconnects = clients.reduce((sum, c) => sum + c.disconnects, 0)
    expect(disconnects).toBeGreaterThanOrEqual(200)
    for (const c of clients) {
      expect(c.problems, c.id).toEqual([])
      // Late `disconnected` events of earlier sockets still reach the open one.
      const log = await eventually(async () => {
        const events = await flushedEvents(server, c.id)
        return events.length > 0 && events.at(-1)!.seq === c.lastSeq ? events : null
      })
      expect(isDense(log), c.id).toBe(true)
      expect([...c.seen.keys()]).toEqual(log.map((e) => e.seq))
      for (const e of log) expect(c.seen.get(e.seq), `${c.id} seq ${e.seq}`).toEqual(e)

      const turns = log.filter((e) => e.type === 'user_message')
      expect(turns).toHaveLength(TURNS)
      expect(log.filter((e) => e.type === 'assistant_message').map((e) => e.finishReason)).toEqual(Array(TURNS).fill('stop'))
      for (const t of turns) {
        const { frame, live } = c.ends.get(t.turnId)!
        const byIndex = c.deltas.get(t.turnId) ?? new Map<number, string>()
        const parts = Array.from({ length: byIndex.size }, (_, i) => byIndex.get(i))
        expect(parts.includes(undefined), `${c.id} turn ${t.turnId}: a gap in its deltas`).toBe(false)
        const text = parts.join('')
        if (live) expect(text).toBe(frame.content)
        else expect(frame.content.startsWith(text)).toBe(true)
      }
    }
    for (const c of clients) c.close()
  }, 60_000)
})
