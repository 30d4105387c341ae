/** One measured run and one idle test: a fresh server and a fresh load-generator process each. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AcceptResult } from './accept-run.js'
import type { AuthIssuer } from './auth-issuer.js'
import type { BaseApp } from './base-app.js'
import type { IdleResult } from './idle-run.js'
import type { LoadResult } from './load-run.js'
import type { ClockCheck, LoadgenJob, LoadgenReply } from './loadgen.js'
import { EXPORT_TAIL_MS, exportsSince, type OtlpReceiver } from './otlp-receiver.js'
import { cpuMeter } from './proc-stats.js'
import { nextMessage, spawnNode, stopChild, tsEntry, type Child } from './procs.js'
import type { BenchOptions } from './suite.js'
import { startTarget, type TargetName } from './targets.js'
import type { UpstreamStats } from './upstream.js'

export interface RunRecord {
  target: TargetName
  sessions: number
  run: number
  result?: LoadResult
  clock?: ClockCheck
  upstream?: UpstreamStats
  serverReadyMs?: number
  serverExitCode?: number | null
  error?: string
  /** Measurements made for this run (more than one when other processes made the first ones noisy). */
  attempts?: number
  /** Still above the noise limit after the retries. */
  noisy?: boolean
  /**
   * app-otel: what the server exported to the bench's OTLP receiver, from its start until it stopped (the last batch is
   * flushed at shutdown); `spansInWindow` arrived during the measured window.
   */
  otel?: {
    requests: number, bytes: number
    /** All spans (the warm-up's too), those that arrived within the window, from the window's start on, and before the stop. */
    spans: number, spansInWindow: number, spansFromWindow: number, spansBeforeStop: number
  }
  /**
   * app and app-otel when app-otel is in the run: the server's CPU over EXPORT_TAIL_MS (opts.exportTailMs) after the load generator finished
   * (its sessions closed), so the spans the batch processor exports after the window are paid for in the comparison.
   */
  tail?: { cpuMs: number, wallMs: number }
}

export interface IdleRecord { target: TargetName, result?: IdleResult, serverExitCode?: number | null, error?: string }

export interface AcceptRecord { target: TargetName, run: number, result?: AcceptResult, serverExitCode?: number | null, error?: string }

/** What the bench runs beside the servers: the JWKS issuer (app-auth), the OTLP receiver (app-otel), the base tree (app-base). */
export interface TargetContext { issuer?: AuthIssuer, otlp?: OtlpReceiver, base?: BaseApp }

/**
 * The server and load-generator settings of `target`: app-auth gets the issuer (and its sessions sign in), app-otel the
 * OTLP receiver, app-base the extracted base tree; the others nothing.
 */
function targetSetup (target: TargetName, { issuer, otlp, base }: TargetContext) {
  if (target === 'app-otel') {
    if (!otlp) throw new Error('app-otel needs the bench OTLP receiver')
    return { server: { otlpEndpoint: otlp.endpoint }, job: {} }
  }
  if (target === 'app-base') {
    if (!base) throw new Error('app-base needs the base revision extracted')
    return { server: { baseDir: base.dir }, job: {} }
  }
  if (target !== 'app-auth') return { server: {}, job: {} }
  if (!issuer) throw new Error('app-auth needs the bench JWKS issuer')
  return { server: { jwksUrl: issuer.jwksUrl }, job: { auth: issuer.signer } }
}

export async function runLoadgen (job: LoadgenJob, timeoutMs: number): Promise<LoadgenReply> {
  const child = spawnNode({ label: 'loadgen', args: tsEntry('bench/loadgen.ts'), env: {}, ipc: true })
  try {
    await nextMessage({ child, type: 'ready', timeoutMs: 30_000 })
    child.proc.send(job)
    return await nextMessage<LoadgenReply>({ child, type: 'result', timeoutMs })
  } finally {
    await stopChild(child, 5000)
  }
}

async function upstreamStats (upstream: Child): Promise<UpstreamStats> {
  upstream.proc.send({ type: 'stats' })
  return (await nextMessage<{ type: string, stats: UpstreamStats }>({ child: upstream, type: 'stats', timeoutMs: 5000 })).stats
}

/** One measurement: a fresh server, a fresh load generator, one load run. Never throws (the error is recorded). */
export async function measureRun ({ target, sessions, run, attempt, upstream, upstreamUrl, opts, ...ctx }: {
  target: TargetName, sessions: number, run: number, attempt: number, upstream: Child, upstreamUrl: string, opts: BenchOptions
} & TargetContext): Promise<RunRecord> {
  const rec: RunRecord = { target, sessions, run }
  const turnMs = opts.ttftMs + (opts.tokens * 1000) / opts.rate + opts.thinkMs
  const timeoutMs = Math.round(opts.staggerMs + opts.turns * turnMs * 4 + 30_000)
  try {
    const profile = opts.profileDir ? { dir: join(opts.profileDir, `${target}-N${sessions}-r${run}${attempt > 1 ? `-a${attempt}` : ''}`) } : undefined
    const auth = targetSetup(target, ctx)
    // One server runs at a time: every export from here on is this server's.
    const otlpFrom = ctx.otlp?.exports.length ?? 0
    // With app-otel in the run, app and app-otel wait EXPORT_TAIL_MS after the warm-up (its spans leave before the window)
    // and after the window (the spans of the last turns leave before the CPU is read): the same waits on both sides.
    const waitMs = (target === 'app' || target === 'app-otel') && opts.targets.includes('app-otel') ? opts.exportTailMs ?? EXPORT_TAIL_MS : 0
    const server = await startTarget({ name: target, upstreamUrl, appEntry: opts.appEntry, profile, ...auth.server })
    rec.serverReadyMs = Math.round(server.readyMs)
    try {
      await upstreamStats(upstream)
      const reply = await runLoadgen({
        kind: 'load', upstreamUrl, url: server.url.replace('http', 'ws'), sessions, turns: opts.turns, tokens: opts.tokens,
        thinkMs: opts.thinkMs, rampPerSec: opts.rampPerSec, staggerMs: opts.staggerMs, prefix: `b${Date.now().toString(36)}`,
        serverPid: server.child.pid, upstreamPid: upstream.pid, timeoutMs,
        warmup: opts.warmup ? { sessions: Math.min(50, sessions), tokens: 40, extra: 'R=400 F=5', settleMs: waitMs } : undefined,
        ...auth.job
      }, timeoutMs + sessions * (1000 / opts.rampPerSec) + waitMs + 60_000)
      if (reply.type === 'failed') throw new Error(reply.message)
      if (reply.kind === 'load') { rec.result = reply.result; rec.clock = reply.clock }
      if (profile && rec.result) {
        // profile-summary cuts the profile to the measured window and divides by the tokens relayed in it.
        const [startUs, endUs] = rec.result.windowHrUs
        mkdirSync(profile.dir, { recursive: true })
        writeFileSync(join(profile.dir, 'window.json'), JSON.stringify({ startUs, endUs, tokens: rec.result.tokens.received }))
      }
      rec.upstream = await upstreamStats(upstream)
      if (rec.result && waitMs > 0) {
        const tail = cpuMeter(server.child.pid)
        await new Promise((resolve) => setTimeout(resolve, waitMs))
        const t = tail()
        rec.tail = { cpuMs: t.cpuMs, wallMs: t.wallMs }
      }
    } finally {
      const beforeStop = ctx.otlp ? exportsSince(ctx.otlp, otlpFrom).spans : 0
      rec.serverExitCode = await stopChild(server.child)
      if (target === 'app-otel' && ctx.otlp) rec.otel = { ...exportsSince(ctx.otlp, otlpFrom, rec.result?.windowHrUs), spansBeforeStop: beforeStop }
    }
  } catch (err) {
    rec.error = (err as Error).message
  }
  return rec
}

/** CPU % other processes took during the run's window (100 = one core). */
export const noise = (rec: RunRecord): number => rec.result?.otherCpuPct ?? 0

export async function idleTest ({ target, upstreamUrl, opts, log, ...ctx }: {
  target: TargetName, upstreamUrl: string, opts: BenchOptions, log: (line: string) => void
} & TargetContext): Promise<IdleRecord> {
  const rec: IdleRecord = { target }
  try {
    const auth = targetSetup(target, ctx)
    const server = await startTarget({ name: target, upstreamUrl, appEntry: opts.appEntry, ...auth.server })
    try {
      const reply = await runLoadgen({
        kind: 'idle', url: server.url.replace('http', 'ws'), sockets: opts.idleSockets, steps: opts.idleSteps,
        rampPerSec: Math.max(opts.rampPerSec, 2000), prefix: `i${Date.now().toString(36)}`, serverPid: server.child.pid, ...auth.job
      }, 60_000 + (opts.idleSockets / 500) * 1000 * 2)
      if (reply.type === 'failed') throw new Error(reply.message)
      if (reply.kind === 'idle') rec.result = reply.result
    } finally {
      rec.serverExitCode = await stopChild(server.child)
    }
  } catch (err) {
    rec.error = (err as Error).message
  }
  const r = rec.result
  log(r
    ? `idle ${target}: ${r.sockets.open}/${r.sockets.requested} open, ${r.sockets.answeredPing} answered ping, ${(r.bytesPerSocket / 1024).toFixed(1)} KB/socket (slope), ${(r.bytesPerSocketTotal / 1024).toFixed(1)} KB/socket (total)`
    : `idle ${target}: FAILED ${rec.error?.split('\n')[0] ?? ''}`)
  return rec
}

/** Accept rate: a fresh server, `opts.acceptSockets` sockets on fresh session ids, `opts.acceptParallel` at a time. Never throws. */
export async function measureAccept ({ target, run, upstreamUrl, opts, ...ctx }: {
  target: TargetName, run: number, upstreamUrl: string, opts: BenchOptions
} & TargetContext): Promise<AcceptRecord> {
  const rec: AcceptRecord = { target, run }
  const sockets = opts.acceptSockets ?? 0
  try {
    const auth = targetSetup(target, ctx)
    const server = await startTarget({ name: target, upstreamUrl, appEntry: opts.appEntry, ...auth.server })
    try {
      const reply = await runLoadgen({
        kind: 'accept', url: server.url.replace('http', 'ws'), sockets, parallel: opts.acceptParallel ?? 10,
        prefix: `a${Date.now().toString(36)}`, serverPid: server.child.pid, ...auth.job
      }, 60_000 + sockets * 50)
      if (reply.type === 'failed') throw new Error(reply.message)
      if (reply.kind === 'accept') rec.result = reply.result
    } finally {
      rec.serverExitCode = await stopChild(server.child)
    }
  } catch (err) {
    rec.error = (err as Error).message
  }
  return rec
}

export function describeAccept (rec: AcceptRecord): string {
  const head = `accept ${rec.target} run ${rec.run}:`
  const r = rec.result
  if (!r) return `${head} FAILED ${rec.error?.split('\n')[0] ?? ''}`
  return `${head} ${r.sockets.accepted}/${r.sockets.requested} accepted (refused ${r.sockets.refused}) in ${r.wallMs.toFixed(0)} ms: ` +
    `${r.acceptedPerSec.toFixed(0)}/s, server CPU ${r.server.cpuPct.toFixed(0)} % ${r.server.cpuUsPerSocket.toFixed(0)} µs/socket, ` +
    `connect p50 ${r.connectMs.p50.toFixed(1)} p99 ${r.connectMs.p99.toFixed(1)} ms, loadgen CPU ${r.loadgenCpuPct.toFixed(0)} %, ` +
    `other CPU ${r.otherCpuPct.toFixed(0)} %, exit ${String(rec.serverExitCode)}` +
    (Object.keys(r.errors).length > 0 ? ` errors ${JSON.stringify(r.errors)}` : '')
}

export function describeRun (rec: RunRecord): string {
  const head = `${rec.target} N=${rec.sessions} run ${rec.run}${(rec.attempts ?? 1) > 1 ? ` (attempt ${rec.attempts})` : ''}:`
  if (!rec.result) return `${head} FAILED ${rec.error?.split('\n')[0] ?? ''}`
  const r = rec.result
  return `${head} p50 ${r.latencyMs.p50.toFixed(1)} p99 ${r.latencyMs.p99.toFixed(1)} ms, TTFT+ p99 ${r.ttftMs.p99.toFixed(1)} ms, ` +
    `CPU ${r.server.cpuPct.toFixed(0)} % ${r.server.cpuUsPerToken.toFixed(0)} µs/token, RSS ${(r.server.rssBytes / 2 ** 20).toFixed(0)} MB, ` +
    `tokens ${r.tokens.received}/${r.tokens.expected} lost ${r.tokens.lost} dup ${r.tokens.duplicated}, refused ${r.sessions.refused}, ` +
    `upstream late p99 ${rec.upstream?.lateP99Ms.toFixed(1) ?? '?'} ms, loadgen CPU ${r.loadgenCpuPct.toFixed(0)} %, other CPU ${r.otherCpuPct.toFixed(0)} %, exit ${String(rec.serverExitCode)}` +
    (rec.tail ? `, CPU in the ${(rec.tail.wallMs / 1000).toFixed(0)} s after ${rec.tail.cpuMs.toFixed(0)} ms` : '') +
    (rec.otel ? `, spans exported ${rec.otel.spansFromWindow} from the window on (${rec.otel.spansInWindow} in it, ${rec.otel.spans - rec.otel.spansBeforeStop} at shutdown; ${rec.otel.spans} with the warm-up) in ${rec.otel.requests} requests` : '') +
    (Object.keys(r.errors).length > 0 ? ` errors ${JSON.stringify(r.errors)}` : '')
}
