/** Runs the whole benchmark: one upstream, then for each N, run and target a fresh server and a fresh load generator. */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import type { IdleResult } from './idle-run.js'
import type { LoadResult } from './load-run.js'
import type { ClockCheck, LoadgenJob, LoadgenReply } from './loadgen.js'
import { nextMessage, spawnNode, stopChild, tsEntry, type Child } from './procs.js'
import { summarize, type Summary } from './summary.js'
import { startTarget, targetAvailable, type TargetName } from './targets.js'
import type { UpstreamStats } from './upstream.js'

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
  targets: TargetName[]
  appEntry: 'tsx' | 'dist'
  warmup: boolean
  /** The latency budget that defines capacity (ms). */
  p99LimitMs: number
  /** When set, every measured server writes V8 CPU profiles under here (`<target>-N<sessions>-r<run>/`). */
  profileDir?: string
  log: (line: string) => void
}

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
}

export interface IdleRecord { target: TargetName, result?: IdleResult, serverExitCode?: number | null, error?: string }

export interface BenchReport {
  startedAt: string
  durationS: number
  machine: Record<string, string | number>
  options: Omit<BenchOptions, 'log'>
  skipped: Array<{ target: TargetName, reason: string }>
  runs: RunRecord[]
  idle: IdleRecord[]
  summary: Summary
}

const readOr = (path: string) => { try { return readFileSync(path, 'utf8').trim().replace(/\s+/g, ' ') } catch { return 'n/a' } }

export function machineInfo (): Record<string, string | number> {
  let fdLimit = 'n/a'
  try { fdLimit = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim() } catch {}
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    ephemeralPorts: readOr('/proc/sys/net/ipv4/ip_local_port_range'),
    somaxconn: readOr('/proc/sys/net/core/somaxconn'),
    fdLimitHard: fdLimit
  }
}

async function runLoadgen (job: LoadgenJob, timeoutMs: number): Promise<LoadgenReply> {
  const child = spawnNode({ label: 'loadgen', args: tsEntry('bench/loadgen.ts'), env: {}, ipc: true })
  try {
    await nextMessage(child, 'ready', 30_000)
    child.proc.send(job)
    return await nextMessage<LoadgenReply>(child, 'result', timeoutMs)
  } finally {
    await stopChild(child, 5000)
  }
}

async function upstreamStats (upstream: Child): Promise<UpstreamStats> {
  upstream.proc.send({ type: 'stats' })
  return (await nextMessage<{ type: string, stats: UpstreamStats }>(upstream, 'stats', 5000)).stats
}

export async function runBenchmark (opts: BenchOptions): Promise<BenchReport> {
  const started = new Date()
  const { log, ...options } = opts
  const skipped = opts.targets.flatMap((target) => {
    const reason = targetAvailable(target, opts.appEntry)
    return reason ? [{ target, reason }] : []
  })
  const targets = opts.targets.filter((t) => !skipped.some((s) => s.target === t))
  for (const s of skipped) log(`skip ${s.target}: ${s.reason}`)

  const upstream = spawnNode({
    label: 'upstream', ipc: true, env: {},
    args: tsEntry('bench/upstream.ts', '--tokens', String(opts.tokens), '--rate', String(opts.rate), '--ttft', String(opts.ttftMs))
  })
  const { port: upstreamPort } = await nextMessage<{ type: string, port: number }>(upstream, 'ready', 30_000)
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`
  const runs: RunRecord[] = []
  const idle: IdleRecord[] = []
  const turnMs = opts.ttftMs + (opts.tokens * 1000) / opts.rate + opts.thinkMs
  try {
    for (const sessions of opts.ladder) {
      for (let run = 1; run <= opts.runs; run++) {
        // Rotate the order so neither target always runs first (a warmer or cooler machine).
        const order = targets.map((_, i) => targets[(i + run - 1) % targets.length])
        for (const target of order) {
          const rec: RunRecord = { target, sessions, run }
          runs.push(rec)
          const timeoutMs = Math.round(opts.staggerMs + opts.turns * turnMs * 4 + 30_000)
          try {
            const profile = opts.profileDir ? { dir: join(opts.profileDir, `${target}-N${sessions}-r${run}`) } : undefined
            const server = await startTarget({ name: target, upstreamUrl, appEntry: opts.appEntry, profile })
            rec.serverReadyMs = Math.round(server.readyMs)
            try {
              await upstreamStats(upstream)
              const reply = await runLoadgen({
                kind: 'load', upstreamUrl, url: server.url.replace('http', 'ws'), sessions, turns: opts.turns, tokens: opts.tokens,
                thinkMs: opts.thinkMs, rampPerSec: opts.rampPerSec, staggerMs: opts.staggerMs, prefix: `b${Date.now().toString(36)}`,
                serverPid: server.child.pid, upstreamPid: upstream.pid, timeoutMs,
                warmup: opts.warmup ? { sessions: Math.min(50, sessions), tokens: 40, extra: 'R=400 F=5' } : undefined
              }, timeoutMs + sessions * (1000 / opts.rampPerSec) + 60_000)
              if (reply.type === 'failed') throw new Error(reply.message)
              if (reply.kind === 'load') { rec.result = reply.result; rec.clock = reply.clock }
              if (profile && rec.result) {
                // profile-summary cuts the profile to the measured window and divides by the tokens relayed in it.
                const [startUs, endUs] = rec.result.windowHrUs
                mkdirSync(profile.dir, { recursive: true })
                writeFileSync(join(profile.dir, 'window.json'), JSON.stringify({ startUs, endUs, tokens: rec.result.tokens.received }))
              }
              rec.upstream = await upstreamStats(upstream)
            } finally {
              rec.serverExitCode = await stopChild(server.child)
            }
          } catch (err) {
            rec.error = (err as Error).message
          }
          log(describeRun(rec))
        }
      }
    }
    if (opts.idleSockets > 0) {
      for (const target of targets) idle.push(await idleTest({ target, upstreamUrl, opts, log }))
    }
  } finally {
    await stopChild(upstream, 5000)
  }
  const report: BenchReport = {
    startedAt: started.toISOString(),
    durationS: Math.round((Date.now() - started.getTime()) / 1000),
    machine: machineInfo(),
    options,
    skipped,
    runs,
    idle,
    summary: summarize({ runs, idle, targets, p99LimitMs: opts.p99LimitMs })
  }
  return report
}

async function idleTest ({ target, upstreamUrl, opts, log }: {
  target: TargetName, upstreamUrl: string, opts: BenchOptions, log: (line: string) => void
}): Promise<IdleRecord> {
  const rec: IdleRecord = { target }
  try {
    const server = await startTarget({ name: target, upstreamUrl, appEntry: opts.appEntry })
    try {
      const reply = await runLoadgen({
        kind: 'idle', url: server.url.replace('http', 'ws'), sockets: opts.idleSockets, steps: opts.idleSteps,
        rampPerSec: Math.max(opts.rampPerSec, 2000), prefix: `i${Date.now().toString(36)}`, serverPid: server.child.pid
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

function describeRun (rec: RunRecord): string {
  const head = `${rec.target} N=${rec.sessions} run ${rec.run}:`
  if (!rec.result) return `${head} FAILED ${rec.error?.split('\n')[0] ?? ''}`
  const r = rec.result
  return `${head} p50 ${r.latencyMs.p50.toFixed(1)} p99 ${r.latencyMs.p99.toFixed(1)} ms, TTFT+ p99 ${r.ttftMs.p99.toFixed(1)} ms, ` +
    `CPU ${r.server.cpuPct.toFixed(0)} % ${r.server.cpuUsPerToken.toFixed(0)} µs/token, RSS ${(r.server.rssBytes / 2 ** 20).toFixed(0)} MB, ` +
    `tokens ${r.tokens.received}/${r.tokens.expected} lost ${r.tokens.lost} dup ${r.tokens.duplicated}, refused ${r.sessions.refused}, ` +
    `upstream late p99 ${rec.upstream?.lateP99Ms.toFixed(1) ?? '?'} ms, loadgen CPU ${r.loadgenCpuPct.toFixed(0)} %, other CPU ${r.otherCpuPct.toFixed(0)} %, exit ${String(rec.serverExitCode)}` +
    (Object.keys(r.errors).length > 0 ? ` errors ${JSON.stringify(r.errors)}` : '')
}
