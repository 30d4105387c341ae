/**
 * `npm run bench -- --cluster` (DESIGN §11): what cluster mode costs and what it survives, on Postgres (DATABASE_URL)
 * and Redis (REDIS_URL, default redis://127.0.0.1:6379).
 * - Load: one instance versus two with each session's sockets split across them (an anchor socket on the owner, the
 *   measured socket on the other instance, so every token crosses Redis); the one-instance run has the same two
 *   sockets per session on one instance. CPU per token counts every instance; p99 is the measured socket's.
 * - Takeover: an owner SIGKILLed mid-turn while a socket on the other instance follows the turn: time until that
 *   socket has the turn closed `interrupted` (median and max over the runs).
 * - Rolling restarts: two instances restarted in turn (SIGTERM, start again) while sessions chat: events lost or
 *   duplicated, turns not closed exactly once.
 */
import { randomUUID } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { canonical, RoamingClient, type Instance } from '../test/support/cluster.js'
import type { Frame } from '../test/support/app.js'
import type { LoadResult } from './load-run.js'
import { runLoadgen } from './measure.js'
import { freePort, nextMessage, ROOT, spawnNode, stopChild, tsEntry, waitForHealth, type Child } from './procs.js'
import { appEntryArgs, appEnv } from './targets.js'

export interface ClusterOptions {
  ladder: number[]
  runs: number
  tokens: number
  rate: number
  ttftMs: number
  rampPerSec: number
  staggerMs: number
  appEntry: 'tsx' | 'dist'
  takeovers: number
  restarts: number
  /** The lease of the takeover runs (ms): takeover is bound by it plus 5 s. */
  leaseMs: number
  log: (line: string) => void
}

interface LoadRow { mode: 'one' | 'two'; sessions: number; run: number; result?: LoadResult; error?: string }

interface AppProc { child: Child; url: string; ws: string; id: string }

async function startApp ({ id, upstreamUrl, redisUrl, appEntry, extra = {} }: { id: string; upstreamUrl: string; redisUrl?: string; appEntry: 'tsx' | 'dist'; extra?: Record<string, string> }): Promise<AppProc> {
  const port = await freePort()
  const child = spawnNode({
    label: id,
    args: appEntryArgs(appEntry),
    env: {
      ...appEnv(upstreamUrl), HOST: '127.0.0.1', PORT: String(port), INSTANCE_ID: id,
      STORAGE: 'postgres', DATABASE_URL: process.env.DATABASE_URL ?? '',
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
      ...extra
    }
  })
  const url = `http://127.0.0.1:${port}`
  await waitForHealth({ child, url: `${url}/health/ready`, timeoutMs: 30_000 })
  return { child, url, ws: url.replace('http', 'ws'), id }
}

export async function runClusterBench (opts: ClusterOptions): Promise<{ markdown: string; json: unknown }> {
  const { log } = opts
  if (!process.env.DATABASE_URL) throw new Error('--cluster needs DATABASE_URL (Postgres with the schema applied)')
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const upstream = spawnNode({
    label: 'upstream', ipc: true, env: {},
    args: tsEntry('bench/upstream.ts', '--tokens', String(opts.tokens), '--rate', String(opts.rate), '--ttft', String(opts.ttftMs))
  })
  const { port } = await nextMessage<{ type: string; port: number }>({ child: upstream, type: 'ready', timeoutMs: 30_000 })
  const upstreamUrl = `http://127.0.0.1:${port}`
  const rows: LoadRow[] = []
  const takeoverMs: number[] = []
  const rolling = { restarts: 0, sessions: 0, turns: 0, lost: 0, duplicated: 0, badTurns: 0, conflicts: 0 }
  try {
    for (const sessions of opts.ladder) {
      for (let run = 1; run <= opts.runs; run++) {
        for (const mode of (run % 2 === 1 ? ['one', 'two'] : ['two', 'one']) as Array<'one' | 'two'>) {
          rows.push(await loadRun({ mode, sessions, run, upstreamUrl, upstream, redisUrl, opts }))
          const r = rows.at(-1)!
          log(`${mode} instance(s) N=${sessions} run ${run}: ${r.result ? `${r.result.server.cpuUsPerToken.toFixed(1)} µs CPU/token, p99 ${r.result.latencyMs.p99.toFixed(1)} ms, lost ${r.result.tokens.lost}` : `failed: ${r.error}`}`)
        }
      }
    }
    for (let i = 0; i < opts.takeovers; i++) {
      const ms = await takeover({ upstreamUrl, redisUrl, opts, round: i })
      takeoverMs.push(ms)
      log(`takeover ${i + 1}: ${ms} ms`)
    }
    Object.assign(rolling, await rollingRestarts({ upstreamUrl, redisUrl, opts }))
    log(`rolling restarts: ${JSON.stringify(rolling)}`)
  } finally {
    await stopChild(upstream)
  }
  const markdown = render({ rows, takeoverMs, rolling, opts })
  return { markdown, json: { rows, takeoverMs, rolling, options: { ...opts, log: undefined } } }
}

async function loadRun ({ mode, sessions, run, upstreamUrl, upstream, redisUrl, opts }: {
  mode: 'one' | 'two'; sessions: number; run: number; upstreamUrl: string; upstream: Child; redisUrl: string; opts: ClusterOptions
}): Promise<LoadRow> {
  const row: LoadRow = { mode, sessions, run }
  const tag = randomUUID().slice(0, 6)
  const apps: AppProc[] = []
  try {
    apps.push(await startApp({ id: `load-${tag}-a`, upstreamUrl, appEntry: opts.appEntry, ...(mode === 'two' ? { redisUrl } : {}) }))
    if (mode === 'two') apps.push(await startApp({ id: `load-${tag}-b`, upstreamUrl, redisUrl, appEntry: opts.appEntry }))
    const [owner, other = owner] = apps
    const turnMs = opts.ttftMs + (opts.tokens * 1000) / opts.rate
    const timeoutMs = Math.round(opts.staggerMs + turnMs * 4 + 30_000)
    const reply = await runLoadgen({
      kind: 'load', upstreamUrl, url: other.ws, anchorUrl: owner.ws, sessions, turns: 1, tokens: opts.tokens, thinkMs: 0,
      rampPerSec: opts.rampPerSec, staggerMs: opts.staggerMs, prefix: `c${tag}`,
      serverPid: owner.child.pid, ...(other !== owner ? { extraServerPids: [other.child.pid] } : {}),
      upstreamPid: upstream.pid, timeoutMs, warmup: { sessions: Math.min(50, sessions), tokens: 40, extra: 'R=400 F=5' }
    }, timeoutMs + sessions * (1000 / opts.rampPerSec) + 90_000)
    if (reply.type === 'failed') throw new Error(reply.message)
    if (reply.kind === 'load') row.result = reply.result
  } catch (err) {
    row.error = (err as Error).message.split('\n')[0]
  } finally {
    for (const app of apps) await stopChild(app.child)
  }
  return row
}

/** Instances as the roaming clients see them. */
const asInstance = (app: AppProc, alive = true): Instance =>
  ({ id: app.id, alive, runs: [], server: { wsUrl: (sessionId: string, after?: number) => `${app.ws}/ws/session/${sessionId}${after === undefined ? '' : `?after=${after}`}` } } as unknown as Instance)

async function takeover ({ upstreamUrl, redisUrl, opts, round }: { upstreamUrl: string; redisUrl: string; opts: ClusterOptions; round: number }): Promise<number> {
  const tag = randomUUID().slice(0, 6)
  const extra = { SESSION_LEASE_MS: String(opts.leaseMs), DISCONNECT_GRACE_MS: '600000' }
  const a = await startApp({ id: `take-${tag}-a`, upstreamUrl, redisUrl, appEntry: opts.appEntry, extra })
  const b = await startApp({ id: `take-${tag}-b`, upstreamUrl, redisUrl, appEntry: opts.appEntry, extra })
  const instances = [asInstance(a), asInstance(b)]
  const id = `take-${tag}-${round}`
  const owner = new RoamingClient(id, () => instances, 0)
  const follower = new RoamingClient(id, () => instances, 1)
  try {
    await owner.start()
    await follower.start()
    follower.send({ type: 'user_message', content: 'T=100000 R=50 F=5', clientId: 'long' })
    const ack = await follower.waitFor((f) => f.type === 'user_message' && f.clientId === 'long')
    await follower.waitFor((f) => f.type === 'delta' && (f.index as number) >= 5)
    a.child.proc.kill('SIGKILL')
    instances[0].alive = false
    const killed = Date.now()
    await follower.waitFor((f) => f.type === 'assistant_message' && f.turnId === ack.turnId, { timeoutMs: opts.leaseMs + 30_000 })
    return Date.now() - killed
  } finally {
    await Promise.all([owner.stop(), follower.stop()])
    await stopChild(a.child)
    await stopChild(b.child)
  }
}

async function rollingRestarts ({ upstreamUrl, redisUrl, opts }: { upstreamUrl: string; redisUrl: string; opts: ClusterOptions }): Promise<{ restarts: number; sessions: number; turns: number; lost: number; duplicated: number; badTurns: number; conflicts: number }> {
  const tag = randomUUID().slice(0, 6)
  const extra = { SESSION_LEASE_MS: String(opts.leaseMs), DISCONNECT_GRACE_MS: '600000', DRAIN_TIMEOUT_MS: '15000' }
  const apps = [await startApp({ id: `roll-${tag}-a`, upstreamUrl, redisUrl, appEntry: opts.appEntry, extra }), await startApp({ id: `roll-${tag}-b`, upstreamUrl, redisUrl, appEntry: opts.appEntry, extra })]
  const instances = apps.map((app) => asInstance(app))
  const ids = Array.from({ length: 20 }, (_, i) => `roll-${tag}-${i}`)
  const clients = ids.map((id, i) => new RoamingClient(id, () => instances, i))
  const sent = new Map<string, string[]>()
  let going = true
  try {
    await Promise.all(clients.map((c) => c.start()))
    const chats = clients.map(async (c) => {
      const mine: string[] = []
      sent.set(c.sessionId, mine)
      for (let n = 0; going; n++) {
        const clientId = `${c.sessionId}-m${n}`
        mine.push(clientId)
        let from = c.frames.length
        c.send({ type: 'user_message', content: `T=60 R=120 F=5 ${n}`, clientId })
        for (;;) {
          const hit = await c.waitFor((f) => (f.type === 'user_message' && f.clientId === clientId) || (f.type === 'error' && f.code !== 'busy') || f.type === 'session', { from, timeoutMs: 60_000 })
          if (hit.type === 'user_message') { await c.waitFor((f) => f.type === 'assistant_message' && f.turnId === hit.turnId, { timeoutMs: 60_000 }); break }
          if (hit.type === 'error') await new Promise((resolve) => setTimeout(resolve, typeof hit.retryAfterMs === 'number' ? hit.retryAfterMs : 200))
          from = c.frames.length
          c.send({ type: 'user_message', content: `T=60 R=120 F=5 ${n}`, clientId })
        }
      }
    })
    for (let r = 0; r < opts.restarts; r++) {
      await new Promise((resolve) => setTimeout(resolve, 700))
      const k = r % apps.length
      instances[k].alive = false
      await stopChild(apps[k].child)
      apps[k] = await startApp({ id: apps[k].id, upstreamUrl, redisUrl, appEntry: opts.appEntry, extra })
      instances[k] = asInstance(apps[k])
    }
    going = false
    await Promise.all(chats)
    return { restarts: opts.restarts, sessions: ids.length, ...(await compare(clients, sent)) }
  } finally {
    going = false
    await Promise.all(clients.map((c) => c.stop()))
    for (const app of apps) await stopChild(app.child)
  }
}

/** Each client's view against the store: stored events it never got, events it got that were never stored, and so on. */
async function compare (clients: RoamingClient[], sent: Map<string, string[]>): Promise<{ turns: number; lost: number; duplicated: number; badTurns: number; conflicts: number }> {
  const db = new pg.Client({ connectionString: process.env.DATABASE_URL })
  await db.connect()
  let turns = 0; let lost = 0; let duplicated = 0; let badTurns = 0; let conflicts = 0
  try {
    for (const c of clients) {
      const log = (await db.query<{ payload: Frame }>('select payload from session_events where session_id = $1 order by seq', [c.sessionId])).rows.map((r) => r.payload)
      const seqs = log.map((e) => e.seq as number)
      lost += seqs.length === 0 ? 0 : (seqs.at(-1)! - seqs.length) // gaps in the log
      const view = new Map(c.storedView().map((e) => [e.seq as number, canonical(e)]))
      for (const e of log) if ((e.seq as number) <= c.lastSeq && view.get(e.seq as number) !== canonical(e)) lost++
      for (const s of view.keys()) if (!seqs.includes(s)) lost++
      const users = log.filter((e) => e.type === 'user_message')
      const byClientId = new Map<string, number>()
      for (const u of users) byClientId.set(u.clientId as string, (byClientId.get(u.clientId as string) ?? 0) + 1)
      for (const n of byClientId.values()) if (n > 1) duplicated += n - 1
      for (const clientId of sent.get(c.sessionId) ?? []) if (!byClientId.has(clientId)) lost++
      for (const u of users) {
        const ends = log.filter((e) => e.type === 'assistant_message' && e.turnId === u.turnId)
        if (ends.length !== 1 || ends[0].finishReason !== 'stop') badTurns++
        turns++
      }
      conflicts += c.conflicts.length
      for (const conflict of c.conflicts.slice(0, 2)) process.stderr.write(`conflict in ${c.sessionId}: ${conflict}\n`)
    }
  } finally {
    await db.end()
  }
  return { turns, lost, duplicated, badTurns, conflicts }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)] }

function render ({ rows, takeoverMs, rolling, opts }: { rows: LoadRow[]; takeoverMs: number[]; rolling: Record<string, number>; opts: ClusterOptions }): string {
  const lines = ['| sessions | instances | CPU µs/token (median) | p99 added latency ms (median) | tokens lost | runs |', '|---|---|---|---|---|---|']
  for (const sessions of opts.ladder) {
    for (const mode of ['one', 'two'] as const) {
      const ok = rows.filter((r) => r.mode === mode && r.sessions === sessions && r.result)
      const failed = rows.filter((r) => r.mode === mode && r.sessions === sessions && !r.result).length
      lines.push(`| ${sessions} | ${mode === 'one' ? '1' : '2 + Redis (split)'} | ${median(ok.map((r) => r.result!.server.cpuUsPerToken)).toFixed(1)} | ${median(ok.map((r) => r.result!.latencyMs.p99)).toFixed(1)} | ${ok.reduce((n, r) => n + r.result!.tokens.lost, 0)} | ${ok.length}${failed > 0 ? ` (+${failed} failed)` : ''} |`)
    }
  }
  return [
    `Cluster mode: one instance vs two with each session's sockets split (anchor on the owner, measured socket on the other), Postgres store, ${opts.tokens} tokens at ${opts.rate}/s per turn.`,
    '',
    ...lines,
    '',
    `Takeover after SIGKILL of the owner (SESSION_LEASE_MS=${opts.leaseMs}): median ${median(takeoverMs)} ms, max ${Math.max(...takeoverMs)} ms over ${takeoverMs.length} (bound: lease + 5 s = ${opts.leaseMs + 5000} ms).`,
    '',
    `Rolling restarts (${rolling.restarts}, SIGTERM then start, 2 instances, ${rolling.sessions} sessions chatting): ${rolling.turns} turns, events lost ${rolling.lost}, duplicated ${rolling.duplicated}, turns not closed exactly once with stop ${rolling.badTurns}, seq conflicts seen by clients ${rolling.conflicts}.`
  ].join('\n')
}

export function writeClusterResults ({ markdown, json, command }: { markdown: string; json: unknown; command: string }): string {
  const dir = join(ROOT, 'bench/results')
  mkdirSync(dir, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const md = join(dir, `cluster-${stamp}.md`)
  writeFileSync(md, `# ${command}\n\n${markdown}\n`)
  writeFileSync(join(dir, `cluster-${stamp}.json`), JSON.stringify(json, null, 2))
  return md
}
