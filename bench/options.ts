/** Command-line options of `npm run bench`, their defaults and the `--quick` profile. */
import { parseArgs } from 'node:util'
import { DEFAULT_BASE_REV } from './base-app.js'
import type { BenchOptions } from './suite.js'
import { ALL_TARGETS, type TargetName } from './targets.js'

export const USAGE = `npm run bench -- [options]
  --quick              about a minute and a half: --ladder 100,300 --runs 1 --tokens 120 --idle 2000 --accept 200
  --ladder 100,200,300,600,1000   concurrent sessions per point
  --runs 3             runs per point (medians are reported)
  --tokens 200 --rate 60 --ttft 500   upstream answer: tokens, tokens/s, time to first token (ms)
  --turns 1 --think 0  user messages per session and the pause between them (ms)
  --ramp 500           session connects per second before the measured window
  --stagger 1000       turns start at random within this many ms
  --idle 10000 --idle-steps 4   idle-socket memory test (0 skips)
  --accept 500 --accept-parallel 10   socket accept rate on app and app-auth: sockets per run, handshakes in flight (0 skips)
  --targets relay,relay-raw,app,app-auth,app-nometrics   servers (relay, relay-lean, relay-raw, app, app-auth, app-nometrics,
                       app-pg, app-otel, app-base); app-pg is added when DATABASE_URL is set; app-auth is the app with JWKS
                       (ES256) sign-in, one user per session; app-nometrics is the app with METRICS=off (what metrics cost
                       per token); app-otel (not by default) is the app with tracing on, exporting over OTLP/HTTP to a
                       receiver in the bench process (what tracing costs per turn); app-base (not by default) is the app
                       at --base-rev, the previous app every change is compared against
  --base-rev ${DEFAULT_BASE_REV}   app-base's git revision: extracted once per run (git archive) into a temporary
                       directory with this repo's node_modules linked in, run from source through tsx (compare it with the
                       default --app-entry tsx), removed at the end
  --app-entry tsx      tsx (src/server.ts) or dist (dist/server.js after npm run build)
  --p99-limit 50       latency budget for capacity (ms)
  --max-other 30 --noise-retries 2   measure a run again (keeping the quietest) when other processes took more
                       than this much CPU (% of one core) during it; the machine is shared
  --no-warmup          skip the short unmeasured warm-up load
  --profile DIR        write a V8 CPU profile of every measured server into DIR (profiles cost CPU: not for the table)
  --out bench/results  where JSON and Markdown go
  --cluster            cluster mode instead (DATABASE_URL and REDIS_URL, default redis://127.0.0.1:6379): one instance vs
                       two with each session's sockets split across them (--ladder 100,300 by default), then --takeovers 10
                       SIGKILLs of an owner mid-turn (takeover time, --lease 3000 ms) and --restarts 10 rolling restarts while
                       20 sessions chat (events lost)`

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean)

export interface ClusterFlags { cluster: boolean, takeovers: number, restarts: number, leaseMs: number }

export function parseOptions (argv: string[]): BenchOptions & { out: string, help: boolean } & ClusterFlags {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      ladder: { type: 'string' },
      runs: { type: 'string' },
      tokens: { type: 'string' },
      rate: { type: 'string', default: '60' },
      ttft: { type: 'string', default: '500' },
      turns: { type: 'string', default: '1' },
      think: { type: 'string', default: '0' },
      ramp: { type: 'string', default: '500' },
      stagger: { type: 'string', default: '1000' },
      idle: { type: 'string' },
      'idle-steps': { type: 'string' },
      accept: { type: 'string' },
      'accept-parallel': { type: 'string', default: '10' },
      targets: { type: 'string' },
      'app-entry': { type: 'string', default: 'tsx' },
      'p99-limit': { type: 'string', default: '50' },
      'no-warmup': { type: 'boolean', default: false },
      'max-other': { type: 'string', default: '30' },
      'noise-retries': { type: 'string' },
      out: { type: 'string', default: 'bench/results' },
      profile: { type: 'string' },
      'base-rev': { type: 'string', default: DEFAULT_BASE_REV },
      cluster: { type: 'boolean', default: false },
      takeovers: { type: 'string', default: '10' },
      restarts: { type: 'string', default: '10' },
      lease: { type: 'string', default: '3000' }
    }
  })
  const q = v.quick
  /** The option `name` as a number ≥ min; `def` when it was not given. */
  const num = (name: keyof typeof v, def: string, min = 0): number => {
    const raw = v[name]
    const n = Number(raw ?? def)
    if (typeof raw === 'boolean' || !Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number ≥ ${min}, got ${String(raw)}`)
    return n
  }
  const targets = list(v.targets ?? (process.env.DATABASE_URL ? 'relay,relay-raw,app,app-auth,app-nometrics,app-pg' : 'relay,relay-raw,app,app-auth,app-nometrics'))
  for (const t of targets) if (!ALL_TARGETS.includes(t as TargetName)) throw new Error(`--targets: unknown ${t} (${ALL_TARGETS.join(', ')})`)
  if (v['app-entry'] !== 'tsx' && v['app-entry'] !== 'dist') throw new Error('--app-entry: tsx or dist')
  const ladder = list(v.ladder ?? (q || v.cluster ? '100,300' : '100,200,300,600,1000')).map(Number)
  if (ladder.length === 0 || ladder.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--ladder: expected positive integers, got ${String(v.ladder)}`)
  return {
    help: v.help,
    out: v.out,
    ladder,
    runs: num('runs', q ? '1' : '3', 1),
    tokens: num('tokens', q ? '120' : '200', 1),
    rate: num('rate', '60', 0.1),
    ttftMs: num('ttft', '500'),
    turns: num('turns', '1', 1),
    thinkMs: num('think', '0'),
    rampPerSec: num('ramp', '500', 1),
    staggerMs: num('stagger', '1000'),
    idleSockets: num('idle', q ? '2000' : '10000'),
    idleSteps: num('idle-steps', q ? '2' : '4', 1),
    acceptSockets: num('accept', q ? '200' : '500'),
    acceptParallel: num('accept-parallel', '10', 1),
    targets: targets as TargetName[],
    appEntry: v['app-entry'],
    warmup: !v['no-warmup'],
    p99LimitMs: num('p99-limit', '50'),
    maxOtherCpuPct: num('max-other', '30'),
    noiseRetries: num('noise-retries', q ? '0' : '2'),
    ...(v.profile ? { profileDir: v.profile } : {}),
    baseRev: v['base-rev'],
    cluster: v.cluster,
    takeovers: num('takeovers', '10', 1),
    restarts: num('restarts', '10', 1),
    leaseMs: num('lease', '3000', 300),
    log: () => {}
  }
}
