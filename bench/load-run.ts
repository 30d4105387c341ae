/** One measured load run, inside the load-generator process: ramp N sessions, stagger their turns, time every token. */
import { mintSessionTokens, type TokenSigner } from './auth-issuer.js'
import { cpuMeter, machineBusyMs, memInfo } from './proc-stats.js'
import { openSession, createTally, type BenchSession, type Tally } from './session-client.js'
import { distribution, type Dist } from './stats.js'
import WebSocket from 'ws'

export interface LoadJob {
  /** ws://host:port of the server under test. */
  url: string
  sessions: number
  turns: number
  tokens: number
  thinkMs: number
  /** New connections per second during the ramp (the connect storm stays out of the measured window). */
  rampPerSec: number
  /** Turns start at a random offset in [0, staggerMs) after the window opens. */
  staggerMs: number
  /** Session id prefix, unique per run. */
  prefix: string
  serverPid: number
  upstreamPid: number
  /** Give up on the run after this long (ms). */
  timeoutMs: number
  /** A short unmeasured load first (its own sessions, closed before the ramp), so the server's JIT is warm. */
  warmup?: {
    sessions: number, tokens: number, extra: string
    /** Pause this long after it (ms): with app-otel in the run, its batch processor exports the warm-up's spans before the window. */
    settleMs?: number
  }
  /** app-auth: every session presents its own token (its own user), minted before the ramp. */
  auth?: TokenSigner
  /**
   * --cluster: each session's first socket opens here (ws://host:port) before the measured one, so the session lives
   * where its anchor is and the measured socket reaches it from wherever `url` is. Anchors read and drop their frames.
   */
  anchorUrl?: string
  /** --cluster: more server processes whose CPU counts as the server's (the other instances). */
  extraServerPids?: number[]
}

export interface LoadResult {
  sessions: { requested: number, connected: number, refused: number, closedEarly: number }
  turns: { expected: number, done: number, contentMismatch: number }
  tokens: { expected: number, received: number, lost: number, duplicated: number, outOfOrder: number, garbage: number }
  /** Server-added latency per token: client receive time minus upstream emit time (ms). */
  latencyMs: Dist
  /** Added time to first token: (upstream arrival − client send) + (first token receive − its emit) (ms). */
  ttftMs: Dist
  /** user_message echo time (ms): acked means stored. */
  ackMs: Dist
  errors: Record<string, number>
  windowMs: number
  /** The measured window on the monotonic clock (µs, `process.hrtime`), to cut CPU profiles to it. */
  windowHrUs: [number, number]
  server: { cpuMs: number, cpuPct: number, cpuUsPerToken: number, rssBytes: number, hwmBytes: number }
  upstreamCpuPct: number
  loadgenCpuPct: number
  /** CPU % (100 = one core) used by anything other than server, upstream and load generator: a noisy neighbour shows here. */
  otherCpuPct: number
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Opens sessions `<prefix>-0…` at `rampPerSec`, at most 256 handshakes in flight; session i presents `tokens[i]` when given. */
export async function rampSessions ({ url, prefix, count, rampPerSec, tally, tokens, anchors }: {
  url: string, prefix: string, count: number, rampPerSec: number, tally: Tally, tokens?: readonly string[]
  /** Opens session i's anchor socket first (--cluster); resolves once it is in the session. */
  anchors?: (i: number) => Promise<void>
}): Promise<BenchSession[]> {
  const opened: Array<BenchSession | undefined> = []
  const pending = new Set<Promise<void>>()
  const start = performance.now()
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / rampPerSec - performance.now()
    if (wait > 1) await pause(wait)
    while (pending.size >= 256) await Promise.race(pending)
    const p: Promise<void> = (anchors ? anchors(i) : Promise.resolve()).then(async () => await openSession({ url: `${url}/ws/session/${prefix}-${i}`, tally, timeoutMs: 15_000, ...(tokens ? { token: tokens[i] } : {}) })
    ).then((s) => { opened[i] = s }).finally(() => pending.delete(p))
    pending.add(p)
  }
  await Promise.all(pending)
  return opened.filter((s): s is BenchSession => s !== undefined)
}

async function warmUp (job: LoadJob, warmup: NonNullable<LoadJob['warmup']>) {
  const tally = createTally()
  const prefix = `${job.prefix}w`
  const tokens = job.auth ? await mintSessionTokens(job.auth, prefix, warmup.sessions) : undefined
  const sessions = await rampSessions({ url: job.url, prefix, count: warmup.sessions, rampPerSec: 1000, tally, tokens })
  const deadlineMs = Date.now() + 30_000
  await Promise.all(sessions.map(async (s, i) => {
    await s.turn({ content: `warmup ${i} T=${warmup.tokens} ${warmup.extra}`, tokens: warmup.tokens, deadlineMs })
  }))
  await Promise.all(sessions.map((s) => s.close()))
  if ((warmup.settleMs ?? 0) > 0) await pause(warmup.settleMs!)
}

export async function runLoad (job: LoadJob): Promise<LoadResult> {
  if (job.warmup) await warmUp(job, job.warmup)
  const tally = createTally()
  const tokens = job.auth ? await mintSessionTokens(job.auth, job.prefix, job.sessions) : undefined
  const anchors = job.anchorUrl === undefined ? undefined : createAnchors(job.anchorUrl, job.prefix)
  const sessions = await rampSessions({ url: job.url, prefix: job.prefix, count: job.sessions, rampPerSec: job.rampPerSec, tally, tokens, ...(anchors ? { anchors: anchors.open } : {}) })
  const deadline = Date.now() + job.timeoutMs
  const server = cpuMeters([job.serverPid, ...(job.extraServerPids ?? [])])
  const upstream = cpuMeter(job.upstreamPid)
  const self = process.cpuUsage()
  const busy0 = machineBusyMs()
  const hr0 = Number(process.hrtime.bigint() / 1000n)
  const t0 = performance.now()

  await Promise.all(sessions.map(async (s, i) => {
    await pause(Math.random() * job.staggerMs)
    for (let k = 0; k < job.turns; k++) {
      if (k > 0 && job.thinkMs > 0) await pause(job.thinkMs)
      await s.turn({ content: `bench ${job.prefix}-${i} turn ${k} T=${job.tokens}`, tokens: job.tokens, deadlineMs: deadline })
    }
  }))

  const windowMs = performance.now() - t0
  const hr1 = Number(process.hrtime.bigint() / 1000n)
  const cpu = server()
  const mem = memInfo(job.serverPid)
  const up = upstream()
  const own = process.cpuUsage(self)
  const busyMs = machineBusyMs() - busy0
  const ownMs = (own.user + own.system) / 1000
  const otherMs = Math.max(0, busyMs - cpu.cpuMs - (up.cpuPct * up.wallMs) / 100 - ownMs)
  await Promise.all(sessions.map((s) => s.close()))
  anchors?.closeAll()

  const expectedTokens = job.sessions * job.turns * job.tokens
  const missingSessions = job.sessions - sessions.length
  return {
    sessions: { requested: job.sessions, connected: sessions.length, refused: tally.refused, closedEarly: tally.closedEarly },
    turns: { expected: job.sessions * job.turns, done: tally.turnsDone, contentMismatch: tally.contentMismatch },
    tokens: {
      expected: expectedTokens,
      received: tally.tokensReceived,
      // Sessions that never connected lose all their tokens.
      lost: tally.lost + missingSessions * job.turns * job.tokens,
      duplicated: tally.duplicated,
      outOfOrder: tally.outOfOrder,
      garbage: tally.garbage
    },
    latencyMs: distribution(tally.latency.values()),
    ttftMs: distribution(tally.ttft.values()),
    ackMs: distribution(tally.ack.values()),
    errors: tally.errors,
    windowMs,
    windowHrUs: [hr0, hr1],
    server: {
      cpuMs: cpu.cpuMs,
      cpuPct: cpu.cpuPct,
      cpuUsPerToken: tally.tokensReceived > 0 ? (cpu.cpuMs * 1000) / tally.tokensReceived : NaN,
      rssBytes: mem.rssBytes,
      hwmBytes: mem.hwmBytes
    },
    upstreamCpuPct: up.cpuPct,
    loadgenCpuPct: windowMs > 0 ? (ownMs / windowMs) * 100 : 0,
    otherCpuPct: windowMs > 0 ? (otherMs / windowMs) * 100 : 0
  }
}

/** The CPU of several processes as one (the instances of a cluster). */
function cpuMeters (pids: number[]): () => { cpuMs: number, wallMs: number, cpuPct: number } {
  const meters = pids.map((pid) => cpuMeter(pid))
  return () => {
    const all = meters.map((m) => m())
    const cpuMs = all.reduce((n, m) => n + m.cpuMs, 0)
    const wallMs = all[0].wallMs
    return { cpuMs, wallMs, cpuPct: wallMs > 0 ? (100 * cpuMs) / wallMs : 0 }
  }
}

/** --cluster: one plain socket per session on the anchor instance, open before the measured one; frames dropped. */
function createAnchors (anchorUrl: string, prefix: string): { open: (i: number) => Promise<void>, closeAll: () => void } {
  const sockets: WebSocket[] = []
  return {
    open: (i) => new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`${anchorUrl}/ws/session/${prefix}-${i}`, { perMessageDeflate: false })
      sockets.push(ws)
      const timer = setTimeout(() => reject(new Error(`anchor ${i}: no connected frame`)), 15_000)
      const onMessage = (raw: WebSocket.RawData): void => {
        if (!String(raw).startsWith('{"type":"connected"') && !String(raw).includes('"type":"connected"')) return
        clearTimeout(timer)
        ws.off('message', onMessage)
        resolve()
      }
      ws.on('message', onMessage)
      ws.once('error', (err) => { clearTimeout(timer); reject(err) })
    }),
    closeAll: () => { for (const ws of sockets) ws.close() }
  }
}
