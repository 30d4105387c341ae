/** Renders a benchmark report as Markdown (the README table) and writes JSON + Markdown under bench/results/. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { EXPORT_TAIL_MS } from './otlp-receiver.js'
import type { BenchReport } from './suite.js'

const f = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a')
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`

export function renderTable (report: BenchReport): string {
  const lines = [
    row(['server', 'sessions', 'added p50 ms', 'p95 ms', 'p99 ms (min–max)', 'added TTFT p50 / p99 ms', 'server CPU %', 'CPU µs/token (min–max)', 'RSS MB', 'lost / dup', 'refused', 'upstream late p99 ms', 'other CPU %']),
    row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:'])
  ]
  const sorted = [...report.summary.points].sort((a, b) => a.sessions - b.sessions || a.target.localeCompare(b.target))
  for (const p of sorted) {
    lines.push(row([
      p.target, p.sessions, f(p.p50), f(p.p95), `${f(p.p99)} (${f(p.p99Min)}–${f(p.p99Max)})`, `${f(p.ttftP50)} / ${f(p.ttftP99)}`,
      f(p.cpuPct, 0), `${f(p.cpuUsPerToken, 0)} (${f(p.cpuUsMin, 0)}–${f(p.cpuUsMax, 0)})`, f(p.rssMB, 0),
      `${p.lost} / ${p.duplicated}`, p.refused + (p.failedRuns > 0 ? ` (${p.failedRuns} runs failed)` : ''),
      f(p.upstreamLateP99), f(p.otherCpuPct, 0) + (p.noisyRuns > 0 ? ` (${p.noisyRuns} noisy)` : '')
    ]))
  }
  return lines.join('\n')
}

/** The accept-rate table (empty string when the test did not run). */
export function renderAcceptTable (report: BenchReport): string {
  const acc = report.summary.accept
  if (acc.length === 0) return ''
  const app = acc.find((a) => a.target === 'app')
  const vsApp = (x: number, ofApp: number | undefined, digits = 2) => (app && ofApp !== undefined ? `${f(x / ofApp, digits)}×` : '')
  const lines = [
    row(['server', 'sockets accepted', 'accepted / s (min–max)', 'vs app', 'server CPU µs / socket (min–max)', 'vs app', 'connect p50 / p99 ms', 'server CPU %', 'loadgen CPU %', 'other CPU %']),
    row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:'])
  ]
  for (const a of acc) {
    lines.push(row([
      a.target, `${a.accepted} / ${a.requested}` + (a.refused > 0 ? ` (${a.refused} refused)` : '') + (a.failedRuns > 0 ? ` (${a.failedRuns} runs failed)` : ''),
      `${f(a.perSec, 0)} (${f(a.perSecMin, 0)}–${f(a.perSecMax, 0)})`, vsApp(a.perSec, app?.perSec),
      `${f(a.cpuUsPerSocket, 0)} (${f(a.cpuUsMin, 0)}–${f(a.cpuUsMax, 0)})`, vsApp(a.cpuUsPerSocket, app?.cpuUsPerSocket),
      `${f(a.connectP50)} / ${f(a.connectP99)}`, f(a.serverCpuPct, 0), f(a.loadgenCpuPct, 0), f(a.otherCpuPct, 0)
    ]))
  }
  return lines.join('\n')
}

const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a')

/** The app against relay-raw and app-base at each step (empty string when neither ran beside app). */
export function renderVersusTable (report: BenchReport): string {
  const v = report.summary.versus ?? []
  if (v.length === 0) return ''
  const others = (['relay-raw', 'app-base'] as const).filter((t) => v.some((p) => p.vs.some((x) => x.target === t)))
  const lines = [
    row(['sessions', 'app CPU µs/token', ...others.flatMap((t) => [t, `app ÷ ${t}`]), 'app p99 ms', ...others.flatMap((t) => [t, `app ÷ ${t}`])]),
    row(['---:', ...Array(2 + 4 * others.length).fill('---:')])
  ]
  for (const p of v) {
    const of = (t: string) => p.vs.find((x) => x.target === t)
    lines.push(row([
      p.sessions, f(p.cpuUsPerToken), ...others.flatMap((t) => [f(of(t)?.cpuUsPerToken ?? NaN), ratio(of(t)?.cpuRatio ?? NaN)]),
      f(p.p99), ...others.flatMap((t) => [f(of(t)?.p99 ?? NaN), ratio(of(t)?.p99Ratio ?? NaN)])
    ]))
  }
  return lines.join('\n')
}

/** What tracing costs per turn at each step (empty string when app-otel and app did not both run). */
export function renderTracingTable (report: BenchReport): string {
  const t = report.summary.tracing ?? []
  if (t.length === 0) return ''
  const lines = [
    row(['sessions', 'turns / run', 'app CPU µs/turn', 'app-otel CPU µs/turn', 'tracing µs/turn (window)', 'of app',
      'tracing µs/turn incl. export after', 'of app', 'app-otel µs/token (app)', 'app-otel p99 ms (app)', 'spans of the turns (in window / at shutdown)', 'spans / turn']),
    row(['---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:'])
  ]
  const pct = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${f(x)} %` : 'n/a')
  for (const p of t) {
    lines.push(row([
      p.sessions, f(p.turnsPerRun, 0), f(p.appCpuUsPerTurn, 0), f(p.otelCpuUsPerTurn, 0), f(p.costUsPerTurn, 0), pct(p.costPct),
      `**${f(p.costWithExportUsPerTurn, 0)}**`, pct(p.costWithExportPct),
      `${f(p.otelCpuUsPerToken)} (${f(p.appCpuUsPerToken)})`, `${f(p.otelP99)} (${f(p.appP99)})`,
      `${p.spans} (${p.spansInWindow} / ${p.spansAtShutdown})`, f(p.spansPerTurn, 2)
    ]))
  }
  return lines.join('\n')
}

export function renderMarkdown (report: BenchReport, command: string): string {
  const { summary: s, machine: m, options: o } = report
  const out = [
    `### Benchmark ${report.startedAt.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `\`${command}\` at commit ${m.commit} — ${m.cpus} cores (${m.cpuModel}), ${m.memoryGB} GB, Node ${m.node}, ${m.os}. ` +
      `Upstream, load generator and server share the cores. Each session sends ${o.turns} message(s); the fake upstream answers ` +
      `${o.tokens} tokens at ${o.rate} tokens/s after ${o.ttftMs} ms; sessions ramp at ${o.rampPerSec}/s and their turns start ` +
      `within ${o.staggerMs} ms. Figures are medians of ${o.runs} run(s) per point; "added" = client receive time − upstream emit time. ` +
      '"Upstream late" is how far behind schedule the fake upstream itself emitted (its own saturation); "other CPU" is what ' +
      'processes outside the benchmark used meanwhile (100 = one core): a run above ' + `${o.maxOtherCpuPct} is measured again ` +
      `(up to ${o.noiseRetries} times, the quietest kept); "noisy" counts runs still above it. ` +
      `Took ${report.durationS} s.`,
    '',
    renderTable(report),
    '',
    `Capacity (highest sessions with p99 ≤ ${o.p99LimitMs} ms, nothing lost or refused; estimate interpolated between steps): ` +
      s.capacity.map((c) => `${c.target} ${c.aboveLadder ? '≥ ' : ''}${c.ladderN} (≈ ${c.aboveLadder ? '≥ ' : ''}${c.interpolatedN})`).join(', ') + '.',
    ''
  ]
  if (report.auth) {
    out.push(
      'app-auth: the app with the same settings and authentication on — ES256 JWTs (iss, aud, exp checked) verified against a ' +
        'JWKS that the bench process serves on 127.0.0.1, every session signed in with its own token as its own user ' +
        `(\`?access_token=\`); ${report.auth.jwksFetches} JWKS fetches over ${report.auth.servers} app-auth servers.`,
      ''
    )
  }
  const versus = renderVersusTable(report)
  if (versus) {
    out.push(
      'The app against ' + [
        ...(s.versus.some((p) => p.vs.some((x) => x.target === 'relay-raw')) ? ['relay-raw (about the least a Node server that relays each token as it arrives can cost)'] : []),
        ...(report.base ? [`app-base (the previous app: \`${report.base.rev}\` = ${report.base.commit}, run from source through tsx with the same env)`] : [])
      ].join(' and ') + ', same run, medians; ratios are app ÷ the other.',
      '',
      versus,
      ''
    )
  }
  const tracing = renderTracingTable(report)
  if (tracing) {
    const o = report.otel
    out.push(
      'What tracing costs: app-otel is the app with `OTEL_EXPORTER_OTLP_ENDPOINT` set to an OTLP/HTTP receiver in the bench process ' +
        '(`bench/otlp-receiver.ts`: answers 200 at once, counts spans), the app\'s exporter and batch processor at their defaults. ' +
        'Cost per turn = (app-otel server CPU − app server CPU) ÷ turns, each run\'s CPU over its measured window, medians; ' +
        `"incl. export after" adds on both sides the server CPU of the ${(report.options.exportTailMs ?? EXPORT_TAIL_MS) / 1000} s after the window (the batch processor ` +
        'exports up to 5 s after a span ends, so the spans of the last turns leave after the window): the full cost. ' +
        `Both also pause as long after the unmeasured warm-up, so its spans leave before the window. Spans of the turns arrived ` +
        'from the window\'s start to the server\'s stop; "in window" while turns ran, "at shutdown" only at the stop ' +
        '(0 when the wait after the window caught every export)' +
        (o ? `. The receiver got ${o.requests} export requests, ${o.spans} spans, ${(o.bytes / 2 ** 20).toFixed(1)} MB over the run${o.unparsed > 0 ? ` (${o.unparsed} requests not JSON: not counted)` : ''}.` : '.'),
      '',
      tracing,
      ''
    )
  }
  const accept = renderAcceptTable(report)
  if (accept) {
    out.push(
      `Socket accept rate: ${o.acceptSockets ?? 0} sockets per run on fresh session ids, ${o.acceptParallel ?? 10} handshakes in flight, ` +
        'each until its `session` frame (after 50 unmeasured ones); medians of the runs. A reconnect storm costs this.',
      '',
      accept,
      ''
    )
  }
  if (s.idle.length > 0) {
    out.push(row(['server', 'idle sockets open', 'answered ping', 'KB per idle socket (slope)', 'KB per socket (incl. fixed)']))
    out.push(row(['---', '---:', '---:', '---:', '---:']))
    for (const i of s.idle) {
      out.push(row([i.target, `${i.open} / ${i.requested}`, i.answeredPing, f(i.kbPerSocket), f(i.kbPerSocketTotal)]) + (i.error ? ` ${i.error}` : ''))
    }
    out.push('')
  }
  const verdicts = [
    ...s.floor.map((v) => ({ ...v, kind: 'floor' })),
    ...s.goal.map((v) => ({ ...v, kind: 'goal' })),
    ...s.reach.map((v) => ({ ...v, kind: 'reachable' })),
    ...s.auth.map((v) => ({ ...v, kind: 'auth cost' })),
    ...(s.metrics ?? []).map((v) => ({ ...v, kind: 'metrics cost' })),
    ...(s.base ?? []).map((v) => ({ ...v, kind: 'vs base' })),
    ...(s.otel ?? []).map((v) => ({ ...v, kind: 'tracing' }))
  ]
  if (verdicts.length > 0) {
    out.push(row(['kind', 'check', 'result', 'measured']), row(['---', '---', '---', '---']))
    for (const v of verdicts) out.push(row([v.kind, v.check, v.ok ? 'pass' : '**fail**', v.detail]))
    out.push('')
  }
  const i = s.integrity
  out.push(
    `Integrity: ${i.lost} lost, ${i.duplicated} duplicated, ${i.outOfOrder} out of order, ${i.contentMismatch} final contents ≠ deltas, ` +
      `${i.refused} refused sessions, ${i.failedRuns} failed runs. Clock check (upstream vs load generator, ` +
      '`performance.timeOrigin + performance.now()`): ' +
      `|offset| ≤ ${f(s.clock.maxAbsOffsetMs, 3)} ms, measured over round trips ≤ ${f(s.clock.maxRttMs, 3)} ms.`
  )
  for (const k of report.skipped) out.push('', `Skipped ${k.target}: ${k.reason}.`)
  return out.join('\n') + '\n'
}

/** Writes `<stamp>.json`, `<stamp>.md` and `latest.json`/`latest.md` into `dir`; returns the paths. */
export function writeResults ({ report, dir, command }: { report: BenchReport, dir: string, command: string }) {
  mkdirSync(dir, { recursive: true })
  const stamp = report.startedAt.replace(/[:.]/g, '-')
  const json = JSON.stringify({ command, ...report }, null, 2)
  const md = renderMarkdown(report, command)
  const paths = { json: join(dir, `${stamp}.json`), md: join(dir, `${stamp}.md`) }
  writeFileSync(paths.json, json)
  writeFileSync(paths.md, md)
  writeFileSync(join(dir, 'latest.json'), json)
  writeFileSync(join(dir, 'latest.md'), md)
  return { ...paths, markdown: md }
}

/** Non-zero when a token was lost, duplicated, reordered or mangled, or a run failed. */
export function integrityFailures (report: BenchReport): number {
  const i = report.summary.integrity
  return i.lost + i.duplicated + i.outOfOrder + i.contentMismatch + i.garbage + i.failedRuns
}
