/** Runs the whole benchmark: one upstream, then for each N, run and target a fresh server and a fresh load generator. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { startAuthIssuer, type AuthIssuer } from './auth-issuer.js'
import { DEFAULT_BASE_REV, prepareBaseApp, type BaseApp } from './base-app.js'
import { describeAccept, describeRun, idleTest, measureAccept, measureRun, noise, type AcceptRecord, type IdleRecord, type RunRecord } from './measure.js'
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.js'
import { nextMessage, ROOT, spawnNode, stopChild, tsEntry } from './procs.js'
import { summarize, type Summary } from './summary.js'
import { targetAvailable, type TargetName } from './targets.js'

export type { AcceptRecord, IdleRecord, RunRecord } from './measure.js'

/** The targets whose socket accept rate is measured (sign-in versus none). */
export const ACCEPT_TARGETS: TargetName[] = ['app', 'app-auth']
/** Targets left out of the idle-socket test: tracing costs per turn, not per idle socket. */
export const NO_IDLE_TARGETS: TargetName[] = ['app-otel']

export interface BenchOptions {
  ladder: number[]
  runs: number
  tokens: number
  rate: number
  ttftMs: number
  turns: number
  thinkMs: number
  rampPerSec: number
  staggerMs: number
  /** Idle sockets for the memory test (0 skips it). */
  idleSockets: number
  idleSteps: number
  /** Accept-rate test: sockets opened per run on app and app-auth (0 or absent skips it)… */
  acceptSockets?: number
  /** …this many handshakes in flight at once (default 10). */
  acceptParallel?: number
  targets: TargetName[]
  appEntry: 'tsx' | 'dist'
  warmup: boolean
  /** The latency budget that defines capacity (ms). */
  p99LimitMs: number
  /** A run during which other processes took more CPU than this (% of one core) is measured again… */
  maxOtherCpuPct: number
  /** …up to this many more times; the quietest attempt is kept. */
  noiseRetries: number
  /** When set, every measured server writes V8 CPU profiles under here (`<target>-N<sessions>-r<run>/`). */
  profileDir?: string
  /** app-base: the git revision of the previous app (default DEFAULT_BASE_REV). */
  baseRev?: string
  /** With app-otel: how long the server's CPU is measured after each window of app and app-otel (default EXPORT_TAIL_MS). */
  exportTailMs?: number
  log: (line: string) => void
}

export interface BenchReport {
  startedAt: string
  durationS: number
  machine: Record<string, string | number>
  options: Omit<BenchOptions, 'log'>
  skipped: Array<{ target: TargetName, reason: string }>
  runs: RunRecord[]
  idle: IdleRecord[]
  accept: AcceptRecord[]
  /** With app-auth: the bench's JWKS issuer, and how often the servers fetched its key set. */
  auth?: { alg: 'ES256', jwksFetches: number, servers: number }
  /** With app-otel: what the bench's OTLP receiver got over the whole run (JSON exports; `unparsed` were not JSON). */
  otel?: { requests: number, spans: number, bytes: number, unparsed: number }
  /** With app-base: the revision given and the commit it named. */
  base?: { rev: string, commit: string }
  summary: Summary
}

const readOr = (path: string) => { try { return readFileSync(path, 'utf8').trim().replace(/\s+/g, ' ') } catch { return 'n/a' } }

export function machineInfo (): Record<string, string | number> {
  let fdLimit = 'n/a'
  try { fdLimit = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim() } catch {}
  let commit = 'n/a'
  try {
    const run = (args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim()
    commit = run(['rev-parse', '--short', 'HEAD']) + (run(['status', '--porcelain', '--', 'src']) ? ' (src modified)' : '')
  } catch {}
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    ephemeralPorts: readOr('/proc/sys/net/ipv4/ip_local_port_range'),
    somaxconn: readOr('/proc/sys/net/core/somaxconn'),
    fdLimitHard: fdLimit,
    commit
  }
}

export async function runBenchmark (opts: BenchOptions): Promise<BenchReport> {
  const started = new Date()
  const { log } = opts
  const skipped = opts.targets.flatMap((target) => {
    const reason = targetAvailable(target, opts.appEntry)
    return reason ? [{ target, reason }] : []
  })
  let base: BaseApp | undefined
  if (opts.targets.includes('app-base') && !skipped.some((s) => s.target === 'app-base')) {
    try {
      base = prepareBaseApp({ rev: opts.baseRev ?? DEFAULT_BASE_REV })
      log(`app-base: ${base.rev} (${base.commit}) extracted into ${base.dir}`)
    } catch (err) {
      skipped.push({ target: 'app-base', reason: (err as Error).message.split('\n')[0] })
    }
  }
  const targets = opts.targets.filter((t) => !skipped.some((s) => s.target === t))
  for (const s of skipped) log(`skip ${s.target}: ${s.reason}`)

  try {
    return await measureAll({ opts, targets, skipped, base, started })
  } finally {
    base?.cleanup()
  }
}

async function measureAll ({ opts, targets, skipped, base, started }: {
  opts: BenchOptions, targets: TargetName[], skipped: BenchReport['skipped'], base: BaseApp | undefined, started: Date
}): Promise<BenchReport> {
  const { log, ...options } = opts
  const upstream = spawnNode({
    label: 'upstream', ipc: true, env: {},
    args: tsEntry('bench/upstream.ts', '--tokens', String(opts.tokens), '--rate', String(opts.rate), '--ttft', String(opts.ttftMs))
  })
  const { port: upstreamPort } = await nextMessage<{ type: string, port: number }>({ child: upstream, type: 'ready', timeoutMs: 30_000 })
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`
  const runs: RunRecord[] = []
  const idle: IdleRecord[] = []
  const accept: AcceptRecord[] = []
  const acceptTargets = (opts.acceptSockets ?? 0) > 0 ? targets.filter((t) => ACCEPT_TARGETS.includes(t)) : []
  let issuer: AuthIssuer | undefined
  let otlp: OtlpReceiver | undefined
  let authServers = 0
  try {
    if (targets.includes('app-auth')) issuer = await startAuthIssuer()
    if (targets.includes('app-otel')) otlp = await startOtlpReceiver()
    const ctx = { issuer, otlp, base }
    for (const sessions of opts.ladder) {
      for (let run = 1; run <= opts.runs; run++) {
        // Rotate the order so neither target always runs first (a warmer or cooler machine).
        const order = targets.map((_, i) => targets[(i + run - 1) % targets.length])
        for (const target of order) {
          let best: RunRecord | undefined
          for (let attempt = 1; attempt <= 1 + opts.noiseRetries; attempt++) {
            const rec = await measureRun({ target, sessions, run, attempt, upstream, upstreamUrl, opts, ...ctx })
            if (target === 'app-auth') authServers++
            rec.attempts = attempt
            log(describeRun(rec))
            if (!best || noise(rec) < noise(best)) best = { ...rec, attempts: attempt }
            if (rec.error !== undefined || noise(rec) <= opts.maxOtherCpuPct) break
            if (attempt <= opts.noiseRetries) log(`  other processes took ${noise(rec).toFixed(0)} % CPU (> ${opts.maxOtherCpuPct}): measuring again`)
          }
          if (best) runs.push({ ...best, noisy: noise(best) > opts.maxOtherCpuPct })
        }
      }
    }
    for (let run = 1; run <= opts.runs && acceptTargets.length > 0; run++) {
      for (const target of acceptTargets.map((_, i) => acceptTargets[(i + run - 1) % acceptTargets.length])) {
        const rec = await measureAccept({ target, run, upstreamUrl, opts, ...ctx })
        if (target === 'app-auth') authServers++
        log(describeAccept(rec))
        accept.push(rec)
      }
    }
    if (opts.idleSockets > 0) {
      for (const target of targets.filter((t) => !NO_IDLE_TARGETS.includes(t))) {
        idle.push(await idleTest({ target, upstreamUrl, opts, log, ...ctx }))
        if (target === 'app-auth') authServers++
      }
    }
  } finally {
    await stopChild(upstream, 5000)
    await issuer?.close()
    await otlp?.close()
  }
  const report: BenchReport = {
    startedAt: started.toISOString(),
    durationS: Math.round((Date.now() - started.getTime()) / 1000),
    machine: machineInfo(),
    options,
    skipped,
    runs,
    idle,
    accept,
    ...(issuer ? { auth: { alg: 'ES256' as const, jwksFetches: issuer.fetches, servers: authServers } } : {}),
    ...(otlp ? { otel: otlp.counts() } : {}),
    ...(base ? { base: { rev: base.rev, commit: base.commit } } : {}),
    summary: summarize({ runs, idle, accept, targets, p99LimitMs: opts.p99LimitMs })
  }
  return report
}

