/** Turns raw runs into per-point medians, capacities, idle memory and the app-versus-floor verdicts. */
import type { AcceptRecord, IdleRecord, RunRecord } from './suite.js'
import { median } from './stats.js'
import type { TargetName } from './targets.js'

export interface PointSummary {
  target: TargetName
  sessions: number
  runs: number
  failedRuns: number
  /** Medians over runs of each run's percentile (ms); min/max show the spread of p99. */
  p50: number
  p95: number
  p99: number
  p99Min: number
  p99Max: number
  ttftP50: number
  ttftP99: number
  ackP99: number
  cpuPct: number
  cpuUsPerToken: number
  cpuUsMin: number
  cpuUsMax: number
  /** Server CPU in the window ÷ turns done in it (µs), median over runs. */
  cpuUsPerTurn: number
  /** Turns done, summed over runs. */
  turns: number
  /** With app-otel in the run (app and app-otel): server CPU in the EXPORT_TAIL_MS after each window ÷ its turns (µs), median. */
  tailCpuUsPerTurn?: number
  /**
   * app-otel, summed over runs: spans its servers exported (the warm-up's too), those that arrived from the measured
   * window's start on (the measured turns'), within the window, and only at shutdown.
   */
  spans?: number
  spansFromWindow?: number
  spansInWindow?: number
  spansAtShutdown?: number
  rssMB: number
  tokensExpected: number
  lost: number
  duplicated: number
  outOfOrder: number
  contentMismatch: number
  garbage: number
  refused: number
  errors: Record<string, number>
  upstreamLateP99: number
  loadgenCpuPct: number
  /** CPU % taken by other processes on the machine during the window (median over runs). */
  otherCpuPct: number
  /** Runs still noisier than the limit after their retries. */
  noisyRuns: number
  badExits: number
}

export interface Verdict { check: string, ok: boolean, detail: string }

/** The app at one step against relay-raw (the least a relay can cost) and app-base (the previous app): ratios are app ÷ other. */
export interface VersusPoint {
  sessions: number
  cpuUsPerToken: number
  p99: number
  vs: Array<{ target: 'relay-raw' | 'app-base', cpuUsPerToken: number, p99: number, cpuRatio: number, p99Ratio: number }>
}

/** What tracing costs at one step: app-otel against app in the same run. */
export interface TracingPoint {
  sessions: number
  /** Turns per run (median of app-otel's runs). */
  turnsPerRun: number
  appCpuUsPerTurn: number
  otelCpuUsPerTurn: number
  /** (app-otel CPU − app CPU) ÷ turns, CPU over the measured window: the server CPU tracing adds to each turn (µs)… */
  costUsPerTurn: number
  /** …as a share of app's CPU per turn. */
  costPct: number
  /**
   * The same with the CPU of the EXPORT_TAIL_MS after the window added on both sides: spans that end near the window's end
   * are exported by the batch processor after it (NaN when the runs have no tail).
   */
  costWithExportUsPerTurn: number
  costWithExportPct: number
  appCpuUsPerToken: number
  otelCpuUsPerToken: number
  appP99: number
  otelP99: number
  /**
   * Spans of the measured turns (summed over runs: those that arrived from each window's start on), those of them that
   * arrived within the windows or only at shutdown, and spans per measured turn.
   */
  spans: number
  spansInWindow: number
  spansAtShutdown: number
  spansPerTurn: number
}

/** Socket accept rate of one target: medians over runs (min/max show the spread). */
export interface AcceptSummary {
  target: TargetName
  runs: number
  failedRuns: number
  /** Summed over runs. */
  requested: number
  accepted: number
  refused: number
  perSec: number
  perSecMin: number
  perSecMax: number
  cpuUsPerSocket: number
  cpuUsMin: number
  cpuUsMax: number
  serverCpuPct: number
  connectP50: number
  connectP99: number
  loadgenCpuPct: number
  otherCpuPct: number
  errors: Record<string, number>
}

export interface Summary {
  points: PointSummary[]
  /** `aboveLadder`: even the top step was within the limit, so the capacity is at least `ladderN`. */
  capacity: Array<{ target: TargetName, ladderN: number, interpolatedN: number, aboveLadder: boolean }>
  idle: Array<{ target: TargetName, open: number, requested: number, answeredPing: number, kbPerSocket: number, kbPerSocketTotal: number, error?: string }>
  floor: Verdict[]
  goal: Verdict[]
  /**
   * With relay-raw in the run: whether the CPU goal is reachable at each step at all. A fail means that reading
   * each token from its own HTTP/1.1 stream and sending it as its own message, with nothing else, already costs
   * more than half the relay's CPU: no server doing that work can meet the goal there.
   */
  reach: Verdict[]
  /**
   * With app-auth and app in the run: what signing in costs — app-auth's CPU per token and p99 within 5 % of app's at
   * each step (at or below app's counts as within), and every accept-test socket signed in. Informational, like `reach`.
   */
  auth: Verdict[]
  /**
   * With app-nometrics and app in the run: what metrics cost — app's CPU per token (METRICS on) against app-nometrics'
   * (METRICS=off) at each step. Informational.
   */
  metrics: Verdict[]
  /** With app and relay-raw or app-base in the run: the app's CPU per token and p99 against each, per step. */
  versus: VersusPoint[]
  /**
   * With app-base and app: the app's CPU per token against the previous app's at each step (within 5 %, or below,
   * passes). Informational.
   */
  base: Verdict[]
  /** With app-otel and app: what tracing costs per turn at each step. */
  tracing: TracingPoint[]
  /** With app-otel: its servers exported at least one span per turn at each step (tracing really ran). */
  otel: Verdict[]
  accept: AcceptSummary[]
  integrity: { lost: number, duplicated: number, outOfOrder: number, contentMismatch: number, garbage: number, refused: number, failedRuns: number }
  clock: { maxAbsOffsetMs: number, maxRttMs: number }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a')
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a')
/** a relative to b, signed: "+3.1 %". */
const rel = (a: number, b: number) => (Number.isFinite(a / b) ? `${a >= b ? '+' : ''}${((a / b - 1) * 100).toFixed(1)} %` : 'n/a')
/** The auth checks' tolerance: app-auth may cost this much more than app. */
const AUTH_TOLERANCE = 0.05

function point ({ target, sessions, recs }: { target: TargetName, sessions: number, recs: RunRecord[] }): PointSummary {
  const ok = recs.flatMap((r) => (r.result ? [r.result] : []))
  const m = (pick: (r: NonNullable<RunRecord['result']>) => number) => median(ok.map(pick))
  const errors: Record<string, number> = {}
  for (const r of ok) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v
  const p99s = ok.map((r) => r.latencyMs.p99)
  const cpus = ok.map((r) => r.server.cpuUsPerToken)
  const otel = recs.flatMap((r) => (r.result && r.otel ? [r.otel] : []))
  const tails = recs.flatMap((r) => (r.result && r.tail && r.result.turns.done > 0 ? [(r.tail.cpuMs * 1000) / r.result.turns.done] : []))
  return {
    target, sessions, runs: ok.length, failedRuns: recs.length - ok.length,
    p50: m((r) => r.latencyMs.p50), p95: m((r) => r.latencyMs.p95), p99: m((r) => r.latencyMs.p99),
    p99Min: Math.min(...p99s), p99Max: Math.max(...p99s),
    ttftP50: m((r) => r.ttftMs.p50), ttftP99: m((r) => r.ttftMs.p99), ackP99: m((r) => r.ackMs.p99),
    cpuPct: m((r) => r.server.cpuPct), cpuUsPerToken: median(cpus), cpuUsMin: Math.min(...cpus), cpuUsMax: Math.max(...cpus),
    cpuUsPerTurn: m((r) => (r.turns.done > 0 ? (r.server.cpuMs * 1000) / r.turns.done : NaN)),
    turns: sum(ok.map((r) => r.turns.done)),
    ...(tails.length > 0 ? { tailCpuUsPerTurn: median(tails) } : {}),
    ...(otel.length > 0
      ? {
          spans: sum(otel.map((o) => o.spans)),
          spansFromWindow: sum(otel.map((o) => o.spansFromWindow)),
          spansInWindow: sum(otel.map((o) => o.spansInWindow)),
          spansAtShutdown: sum(otel.map((o) => o.spans - o.spansBeforeStop))
        }
      : {}),
    rssMB: m((r) => r.server.rssBytes / 2 ** 20),
    tokensExpected: sum(ok.map((r) => r.tokens.expected)),
    lost: sum(ok.map((r) => r.tokens.lost)), duplicated: sum(ok.map((r) => r.tokens.duplicated)),
    outOfOrder: sum(ok.map((r) => r.tokens.outOfOrder)), contentMismatch: sum(ok.map((r) => r.turns.contentMismatch)),
    garbage: sum(ok.map((r) => r.tokens.garbage)), refused: sum(ok.map((r) => r.sessions.refused)),
    errors,
    upstreamLateP99: median(recs.map((r) => r.upstream?.lateP99Ms ?? NaN)),
    loadgenCpuPct: m((r) => r.loadgenCpuPct),
    otherCpuPct: m((r) => r.otherCpuPct),
    noisyRuns: recs.filter((r) => r.noisy === true).length,
    badExits: recs.filter((r) => r.serverExitCode !== undefined && r.serverExitCode !== 0).length
  }
}

/** Highest ladder N whose median p99 is within the limit with nothing lost or refused, and a linear estimate between steps. */
function capacity (points: PointSummary[], limit: number) {
  let ladderN = 0
  let interpolatedN = 0
  let prev: PointSummary | undefined
  for (const p of points) {
    const good = p.runs > 0 && p.p99 <= limit && p.lost === 0 && p.refused === 0
    if (good) { ladderN = p.sessions; interpolatedN = p.sessions; prev = p; continue }
    if (prev && Number.isFinite(p.p99) && p.p99 > prev.p99) {
      interpolatedN = Math.round(prev.sessions + ((limit - prev.p99) * (p.sessions - prev.sessions)) / (p.p99 - prev.p99))
    }
    return { ladderN, interpolatedN, aboveLadder: false }
  }
  return { ladderN, interpolatedN, aboveLadder: points.length > 0 }
}

function compare ({ app, relay, label }: { app: PointSummary[], relay: PointSummary[], label: string }) {
  const floor: Verdict[] = []
  const goal: Verdict[] = []
  for (const a of app) {
    const r = relay.find((x) => x.sessions === a.sessions)
    if (!r || a.runs === 0 || r.runs === 0) continue
    const latencyCap = 1.25 * r.p99 + 2
    floor.push({ check: `${label} p99 ≤ 1.25× relay + 2 ms @${a.sessions}`, ok: a.p99 <= latencyCap, detail: `${f1(a.p99)} vs ≤ ${f1(latencyCap)} ms` })
    floor.push({ check: `${label} CPU/token ≤ 1.25× relay @${a.sessions}`, ok: a.cpuUsPerToken <= 1.25 * r.cpuUsPerToken, detail: `${f1(a.cpuUsPerToken)} vs ≤ ${f1(1.25 * r.cpuUsPerToken)} µs` })
    goal.push({ check: `${label} CPU/token ≤ 0.5× relay @${a.sessions}`, ok: a.cpuUsPerToken <= 0.5 * r.cpuUsPerToken, detail: `${f1(a.cpuUsPerToken)} vs ≤ ${f1(0.5 * r.cpuUsPerToken)} µs` })
  }
  const lost = sum(app.map((p) => p.lost + p.duplicated))
  const refused = sum(app.map((p) => p.refused))
  floor.push({ check: `${label} 0 lost/duplicated tokens`, ok: lost === 0, detail: String(lost) })
  floor.push({ check: `${label} no refused sessions`, ok: refused === 0, detail: String(refused) })
  return { floor, goal }
}

function acceptSummary (target: TargetName, recs: AcceptRecord[]): AcceptSummary {
  const ok = recs.flatMap((r) => (r.result ? [r.result] : []))
  const m = (pick: (r: NonNullable<AcceptRecord['result']>) => number) => median(ok.map(pick))
  const rates = ok.map((r) => r.acceptedPerSec)
  const cpus = ok.map((r) => r.server.cpuUsPerSocket)
  const errors: Record<string, number> = {}
  for (const r of ok) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v
  return {
    target, runs: ok.length, failedRuns: recs.length - ok.length,
    requested: sum(ok.map((r) => r.sockets.requested)), accepted: sum(ok.map((r) => r.sockets.accepted)), refused: sum(ok.map((r) => r.sockets.refused)),
    perSec: median(rates), perSecMin: Math.min(...rates), perSecMax: Math.max(...rates),
    cpuUsPerSocket: median(cpus), cpuUsMin: Math.min(...cpus), cpuUsMax: Math.max(...cpus),
    serverCpuPct: m((r) => r.server.cpuPct), connectP50: m((r) => r.connectMs.p50), connectP99: m((r) => r.connectMs.p99),
    loadgenCpuPct: m((r) => r.loadgenCpuPct), otherCpuPct: m((r) => r.otherCpuPct),
    errors
  }
}

/** app-auth against app: CPU per token and p99 at each step, and the accept test's sign-ins. */
function authCost ({ auth, app, accept }: { auth: PointSummary[], app: PointSummary[], accept: AcceptSummary | undefined }): Verdict[] {
  const out: Verdict[] = []
  const within = `within ${AUTH_TOLERANCE * 100} % of app`
  for (const a of auth) {
    const b = app.find((x) => x.sessions === a.sessions)
    if (!b || a.runs === 0 || b.runs === 0) continue
    out.push({
      check: `app-auth CPU/token ${within} @${a.sessions}`,
      ok: a.cpuUsPerToken <= (1 + AUTH_TOLERANCE) * b.cpuUsPerToken,
      detail: `${f1(a.cpuUsPerToken)} vs ${f1(b.cpuUsPerToken)} µs (${rel(a.cpuUsPerToken, b.cpuUsPerToken)})`
    })
    out.push({
      check: `app-auth p99 ${within} @${a.sessions}`,
      ok: a.p99 <= (1 + AUTH_TOLERANCE) * b.p99,
      detail: `${f1(a.p99)} vs ${f1(b.p99)} ms (${rel(a.p99, b.p99)})`
    })
  }
  if (accept) {
    out.push({
      check: 'app-auth accepted every socket',
      ok: accept.failedRuns === 0 && accept.runs > 0 && accept.accepted === accept.requested,
      detail: `${accept.accepted} / ${accept.requested}${accept.failedRuns > 0 ? ` (${accept.failedRuns} runs failed)` : ''}`
    })
  }
  return out
}

/** app (METRICS on) against app-nometrics: CPU per token at each step, within the same tolerance as signing in. */
function metricsCost ({ on, off }: { on: PointSummary[], off: PointSummary[] }): Verdict[] {
  const out: Verdict[] = []
  for (const a of on) {
    const b = off.find((x) => x.sessions === a.sessions)
    if (!b || a.runs === 0 || b.runs === 0) continue
    out.push({
      check: `app (metrics on) CPU/token within ${AUTH_TOLERANCE * 100} % of app-nometrics @${a.sessions}`,
      ok: a.cpuUsPerToken <= (1 + AUTH_TOLERANCE) * b.cpuUsPerToken,
      detail: `${f1(a.cpuUsPerToken)} vs ${f1(b.cpuUsPerToken)} µs (${rel(a.cpuUsPerToken, b.cpuUsPerToken)})`
    })
  }
  return out
}

/** app against relay-raw and app-base at each step where app and at least one of them ran. */
function versus ({ app, raw, base }: { app: PointSummary[], raw: PointSummary[], base: PointSummary[] }): VersusPoint[] {
  const out: VersusPoint[] = []
  for (const a of app) {
    if (a.runs === 0) continue
    const vs: VersusPoint['vs'] = []
    for (const [target, of] of [['relay-raw', raw], ['app-base', base]] as const) {
      const o = of.find((x) => x.sessions === a.sessions)
      if (!o || o.runs === 0) continue
      vs.push({ target, cpuUsPerToken: o.cpuUsPerToken, p99: o.p99, cpuRatio: a.cpuUsPerToken / o.cpuUsPerToken, p99Ratio: a.p99 / o.p99 })
    }
    if (vs.length > 0) out.push({ sessions: a.sessions, cpuUsPerToken: a.cpuUsPerToken, p99: a.p99, vs })
  }
  return out
}

/** app (now) against app-base (the previous app): CPU per token at each step, within the same tolerance as signing in. */
function baseCost (v: VersusPoint[]): Verdict[] {
  return v.flatMap((p) => p.vs.filter((x) => x.target === 'app-base').map((b) => ({
    check: `app CPU/token within ${AUTH_TOLERANCE * 100} % of app-base @${p.sessions}`,
    ok: p.cpuUsPerToken <= (1 + AUTH_TOLERANCE) * b.cpuUsPerToken,
    detail: `${f1(p.cpuUsPerToken)} vs ${f1(b.cpuUsPerToken)} µs (${rel(p.cpuUsPerToken, b.cpuUsPerToken)}); p99 ${f1(p.p99)} vs ${f1(b.p99)} ms (${f2(b.p99Ratio)}×)`
  })))
}

/** app-otel against app: the CPU tracing adds per turn, and the spans that prove it ran. */
function tracingCost ({ otel, app, runs }: { otel: PointSummary[], app: PointSummary[], runs: RunRecord[] }): TracingPoint[] {
  const out: TracingPoint[] = []
  for (const o of otel) {
    const a = app.find((x) => x.sessions === o.sessions)
    if (!a || o.runs === 0 || a.runs === 0) continue
    const turnsPerRun = median(runs.filter((r) => r.target === 'app-otel' && r.sessions === o.sessions && r.result).map((r) => r.result!.turns.done))
    const cost = o.cpuUsPerTurn - a.cpuUsPerTurn
    const withExport = (o.cpuUsPerTurn + (o.tailCpuUsPerTurn ?? NaN)) - (a.cpuUsPerTurn + (a.tailCpuUsPerTurn ?? NaN))
    out.push({
      sessions: o.sessions, turnsPerRun,
      appCpuUsPerTurn: a.cpuUsPerTurn, otelCpuUsPerTurn: o.cpuUsPerTurn, costUsPerTurn: cost, costPct: (cost / a.cpuUsPerTurn) * 100,
      costWithExportUsPerTurn: withExport, costWithExportPct: (withExport / (a.cpuUsPerTurn + (a.tailCpuUsPerTurn ?? NaN))) * 100,
      appCpuUsPerToken: a.cpuUsPerToken, otelCpuUsPerToken: o.cpuUsPerToken, appP99: a.p99, otelP99: o.p99,
      spans: o.spansFromWindow ?? 0, spansInWindow: o.spansInWindow ?? 0, spansAtShutdown: o.spansAtShutdown ?? 0,
      spansPerTurn: o.turns > 0 ? (o.spansFromWindow ?? 0) / o.turns : NaN
    })
  }
  return out
}

export function summarize ({ runs, idle, accept = [], targets, p99LimitMs }: {
  runs: RunRecord[], idle: IdleRecord[], accept?: AcceptRecord[], targets: TargetName[], p99LimitMs: number
}): Summary {
  const points: PointSummary[] = []
  for (const target of targets) {
    const ns = [...new Set(runs.filter((r) => r.target === target).map((r) => r.sessions))].sort((a, b) => a - b)
    for (const n of ns) points.push(point({ target, sessions: n, recs: runs.filter((r) => r.target === target && r.sessions === n) }))
  }
  const of = (t: TargetName) => points.filter((p) => p.target === t)
  const caps = targets.map((target) => ({ target, ...capacity(of(target), p99LimitMs) }))
  const floor: Verdict[] = []
  const goal: Verdict[] = []
  const relayCap = caps.find((c) => c.target === 'relay')
  for (const app of ['app', 'app-auth', 'app-pg'] as const) {
    if (!targets.includes(app) || !targets.includes('relay')) continue
    const v = compare({ app: of(app), relay: of('relay'), label: app })
    floor.push(...v.floor)
    goal.push(...v.goal)
    const cap = caps.find((c) => c.target === app)
    if (cap && relayCap) {
      // The interpolated estimates compare finer than the ladder steps.
      floor.push({ check: `${app} capacity ≥ 0.8× relay`, ok: cap.interpolatedN >= 0.8 * relayCap.interpolatedN, detail: `${cap.interpolatedN} vs ${relayCap.interpolatedN} sessions` })
      // With the relay below the ladder the ratio says nothing: not a pass.
      goal.push({
        check: `${app} capacity ≥ 1.5× relay`,
        ok: relayCap.interpolatedN > 0 && cap.interpolatedN >= 1.5 * relayCap.interpolatedN,
        detail: `${cap.interpolatedN} vs ${relayCap.interpolatedN} sessions${relayCap.interpolatedN > 0 ? '' : ' (relay below the ladder: inconclusive)'}`
      })
    }
  }
  const reach: Verdict[] = []
  for (const raw of of('relay-raw')) {
    const r = of('relay').find((x) => x.sessions === raw.sessions)
    if (!r || raw.runs === 0 || r.runs === 0) continue
    reach.push({
      check: `relay-raw CPU/token ≤ 0.5× relay @${raw.sessions}`,
      ok: raw.cpuUsPerToken <= 0.5 * r.cpuUsPerToken,
      detail: `${f1(raw.cpuUsPerToken)} vs ≤ ${f1(0.5 * r.cpuUsPerToken)} µs (${f2(raw.cpuUsPerToken / r.cpuUsPerToken)}×)`
    })
  }
  for (const i of idle) {
    if (!i.target.startsWith('app')) continue
    const kb = (i.result?.bytesPerSocket ?? NaN) / 1024
    floor.push({ check: `${i.target} ≤ 20 KB per idle socket`, ok: kb <= 20 && i.result?.sockets.open === i.result?.sockets.requested, detail: `${f1(kb)} KB over ${i.result?.sockets.open ?? 0} sockets` })
  }
  const accepts = targets.filter((t) => accept.some((a) => a.target === t)).map((t) => acceptSummary(t, accept.filter((a) => a.target === t)))
  const auth = targets.includes('app-auth')
    ? authCost({ auth: of('app-auth'), app: of('app'), accept: accepts.find((a) => a.target === 'app-auth') })
    : []
  const metrics = targets.includes('app-nometrics') && targets.includes('app') ? metricsCost({ on: of('app'), off: of('app-nometrics') }) : []
  const vs = targets.includes('app') ? versus({ app: of('app'), raw: of('relay-raw'), base: of('app-base') }) : []
  const tracing = targets.includes('app-otel') && targets.includes('app') ? tracingCost({ otel: of('app-otel'), app: of('app'), runs }) : []
  const otel = of('app-otel').filter((p) => p.runs > 0).map((p) => ({
    check: `app-otel exported ≥ 1 span per turn @${p.sessions}`,
    ok: (p.spansFromWindow ?? 0) >= p.turns && p.turns > 0,
    detail: `${p.spansFromWindow ?? 0} spans from the windows on (${p.spansInWindow ?? 0} within them; ${p.spans ?? 0} with the warm-up) for ${p.turns} turns`
  }))
  const clocks = runs.flatMap((r) => (r.clock ? [r.clock] : []))
  return {
    points,
    capacity: caps,
    idle: idle.map((i) => ({
      target: i.target,
      open: i.result?.sockets.open ?? 0,
      requested: i.result?.sockets.requested ?? 0,
      answeredPing: i.result?.sockets.answeredPing ?? 0,
      kbPerSocket: (i.result?.bytesPerSocket ?? NaN) / 1024,
      kbPerSocketTotal: (i.result?.bytesPerSocketTotal ?? NaN) / 1024,
      ...(i.error ? { error: i.error.split('\n')[0] } : {})
    })),
    floor,
    goal,
    reach,
    auth,
    metrics,
    versus: vs,
    base: baseCost(vs),
    tracing,
    otel,
    accept: accepts,
    integrity: {
      lost: sum(points.map((p) => p.lost)),
      duplicated: sum(points.map((p) => p.duplicated)),
      outOfOrder: sum(points.map((p) => p.outOfOrder)),
      contentMismatch: sum(points.map((p) => p.contentMismatch)),
      garbage: sum(points.map((p) => p.garbage)),
      // Sessions refused in the load runs and sockets refused in the accept test.
      refused: sum(points.map((p) => p.refused)) + sum(accepts.map((a) => a.refused)),
      failedRuns: sum(points.map((p) => p.failedRuns)) + runs.filter((r) => !points.some((p) => p.target === r.target)).length +
        accept.filter((a) => !a.result).length
    },
    clock: {
      maxAbsOffsetMs: Math.max(0, ...clocks.map((c) => Math.abs(c.offsetMs))),
      maxRttMs: Math.max(0, ...clocks.map((c) => c.rttMs))
    }
  }
}
