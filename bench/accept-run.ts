/**
 * Socket accept rate, inside the load-generator process: open N sockets on fresh session ids, a few at a time, each
 * until its `session` frame, and time it — what a reconnect storm costs the server, with or without sign-in.
 */
import { mintSessionTokens, type TokenSigner } from './auth-issuer.js'
import { cpuMeter, machineBusyMs } from './proc-stats.js'
import { rampSessions } from './load-run.js'
import { createTally, openSession, type BenchSession } from './session-client.js'
import { createSample, distribution, type Dist } from './stats.js'

export interface AcceptJob {
  url: string
  sockets: number
  /** Handshakes in flight at once (a new one starts when one got its session frame). */
  parallel: number
  prefix: string
  serverPid: number
  /** app-auth: every socket presents its own token (its own user), minted before the clock starts. */
  auth?: TokenSigner
}

export interface AcceptResult {
  sockets: { requested: number, accepted: number, refused: number }
  wallMs: number
  /** Sockets that reached their `session` frame per second of wall time. */
  acceptedPerSec: number
  server: { cpuMs: number, cpuPct: number, cpuUsPerSocket: number }
  /** Connect → `session` frame, per accepted socket (ms). */
  connectMs: Dist
  loadgenCpuPct: number
  /** CPU % (100 = one core) used by anything other than the server and the load generator meanwhile. */
  otherCpuPct: number
  errors: Record<string, number>
}

export async function runAccept (job: AcceptJob): Promise<AcceptResult> {
  // Warm the connect path (code loading, JIT, and for app-auth the JWKS fetch) outside the measurement.
  const warmTally = createTally()
  const warmPrefix = `${job.prefix}w`
  const warmCount = Math.min(50, job.sockets)
  const warm = await rampSessions({
    url: job.url, prefix: warmPrefix, count: warmCount, rampPerSec: 1000, tally: warmTally,
    tokens: job.auth ? await mintSessionTokens(job.auth, warmPrefix, warmCount) : undefined
  })
  await Promise.all(warm.map((s) => s.close()))
  // Let the server finish with the closed warm-up sessions before its CPU is read.
  await new Promise((resolve) => setTimeout(resolve, 300))

  const tokens = job.auth ? await mintSessionTokens(job.auth, job.prefix, job.sockets) : undefined
  const tally = createTally()
  const connect = createSample(job.sockets)
  const open: BenchSession[] = []
  const pending = new Set<Promise<void>>()
  const server = cpuMeter(job.serverPid)
  const self = process.cpuUsage()
  const busy0 = machineBusyMs()
  const t0 = performance.now()
  for (let i = 0; i < job.sockets; i++) {
    while (pending.size >= job.parallel) await Promise.race(pending)
    const started = performance.now()
    const p: Promise<void> = openSession({ url: `${job.url}/ws/session/${job.prefix}-${i}`, tally, timeoutMs: 15_000, ...(tokens ? { token: tokens[i] } : {}) })
      .then((s) => { if (s) { connect.push(performance.now() - started); open.push(s) } })
      .finally(() => pending.delete(p))
    pending.add(p)
  }
  await Promise.all(pending)
  const wallMs = performance.now() - t0
  const cpu = server()
  const own = process.cpuUsage(self)
  const ownMs = (own.user + own.system) / 1000
  const otherMs = Math.max(0, machineBusyMs() - busy0 - cpu.cpuMs - ownMs)
  await Promise.all(open.map((s) => s.close()))

  return {
    sockets: { requested: job.sockets, accepted: open.length, refused: tally.refused },
    wallMs,
    acceptedPerSec: wallMs > 0 ? (open.length * 1000) / wallMs : NaN,
    server: { cpuMs: cpu.cpuMs, cpuPct: cpu.cpuPct, cpuUsPerSocket: open.length > 0 ? (cpu.cpuMs * 1000) / open.length : NaN },
    connectMs: distribution(connect.values()),
    loadgenCpuPct: wallMs > 0 ? (ownMs / wallMs) * 100 : 0,
    otherCpuPct: wallMs > 0 ? (otherMs / wallMs) * 100 : 0,
    errors: { ...tally.errors, ...Object.fromEntries(Object.entries(warmTally.errors).map(([k, v]) => [`warm-up ${k}`, v])) }
  }
}
