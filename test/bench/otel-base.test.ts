/**
 * The app-otel and app-base targets: the OTLP receiver and the base tree on their own, the tracing and versus figures
 * on made-up runs, and a tiny bench (relay-raw, app, app-otel, app-base × 2 sessions × 5 tokens) with every figure present.
 */
import { existsSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { DEFAULT_BASE_REV, prepareBaseApp } from '../../bench/base-app.js'
import type { LoadResult } from '../../bench/load-run.js'
import { countSpans, exportsSince, startOtlpReceiver } from '../../bench/otlp-receiver.js'
import { ROOT } from '../../bench/procs.js'
import { integrityFailures, renderMarkdown, renderTracingTable, renderVersusTable } from '../../bench/report.js'
import type { BenchReport, RunRecord } from '../../bench/suite.js'
import { runBenchmark } from '../../bench/suite.js'
import { summarize } from '../../bench/summary.js'
import type { TargetName } from '../../bench/targets.js'

const otlpBody = (spans: number) => JSON.stringify({
  resourceSpans: [{ resource: {}, scopeSpans: [{ scope: { name: 'a' }, spans: Array.from({ length: spans }, (_, i) => ({ spanId: String(i) })) }, { scopeSpans: [] }] }]
})

const post = (url: string, body: Buffer, headers: Record<string, string>) => new Promise<{ status: number, body: string }>((resolve, reject) => {
  const req = request(url, { method: 'POST', headers }, (res) => {
    let text = ''
    res.on('data', (c: Buffer) => { text += c.toString('utf8') })
    res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
  })
  req.on('error', reject)
  req.end(body)
})

describe('OTLP receiver', () => {
  it('answers 200 {} to POST /v1/traces and counts the spans of JSON exports (gzip too), 404 elsewhere', async () => {
    expect(countSpans(otlpBody(3))).toBe(3)
    expect(countSpans('{}')).toBeNaN()
    expect(countSpans('not json')).toBeNaN()
    const r = await startOtlpReceiver()
    try {
      const json = { 'content-type': 'application/json' }
      expect(await post(`${r.endpoint}/v1/traces`, Buffer.from(otlpBody(4)), json)).toEqual({ status: 200, body: '{}' })
      expect(await post(`${r.endpoint}/v1/traces`, gzipSync(otlpBody(2)), { ...json, 'content-encoding': 'gzip' })).toEqual({ status: 200, body: '{}' })
      expect((await post(`${r.endpoint}/v1/traces`, Buffer.from([1, 2, 3]), { 'content-type': 'application/x-protobuf' })).status).toBe(200)
      expect((await post(`${r.endpoint}/v1/metrics`, Buffer.from('{}'), json)).status).toBe(404)
      expect(r.counts()).toMatchObject({ requests: 3, spans: 6, unparsed: 1 })
      const all = exportsSince(r, 0, [0, Number.MAX_SAFE_INTEGER])
      expect(all).toMatchObject({ requests: 3, spans: 6, spansInWindow: 6 })
      expect(exportsSince(r, 1, [0, 1])).toMatchObject({ requests: 2, spans: 2, spansInWindow: 0 })
    } finally {
      await r.close()
    }
  })
})

describe('base tree', () => {
  it('extracts the base revision with node_modules linked in, and removes it without touching the repository', () => {
    const base = prepareBaseApp({ rev: DEFAULT_BASE_REV })
    try {
      expect(base.commit).toBe('5a5ddd8')
      expect(existsSync(join(base.dir, 'src/server.ts'))).toBe(true)
      expect(existsSync(join(base.dir, 'node_modules/fastify/package.json'))).toBe(true)
    } finally {
      base.cleanup()
    }
    expect(existsSync(base.dir)).toBe(false)
    expect(existsSync(join(ROOT, 'node_modules/fastify/package.json'))).toBe(true)
    expect(() => prepareBaseApp({ rev: 'no-such-revision-xyz' })).toThrow(/--base-rev no-such-revision-xyz: not a commit/)
  })
})

function run (target: TargetName, sessions: number, { p99, cpuMs, tailMs, spans }: { p99: number, cpuMs: number, tailMs?: number, spans?: number }): RunRecord {
  const tokens = sessions * 10
  const dist = { count: tokens, p50: p99 / 4, p95: p99 / 2, p99, max: p99 }
  const result: LoadResult = {
    sessions: { requested: sessions, connected: sessions, refused: 0, closedEarly: 0 },
    turns: { expected: sessions, done: sessions, contentMismatch: 0 },
    tokens: { expected: tokens, received: tokens, lost: 0, duplicated: 0, outOfOrder: 0, garbage: 0 },
    latencyMs: dist, ttftMs: dist, ackMs: dist, errors: {}, windowMs: 1000, windowHrUs: [0, 1],
    server: { cpuMs, cpuPct: 10, cpuUsPerToken: (cpuMs * 1000) / tokens, rssBytes: 1e8, hwmBytes: 1e8 },
    upstreamCpuPct: 1, loadgenCpuPct: 1, otherCpuPct: 0
  }
  return {
    target, sessions, run: 1, result,
    ...(tailMs !== undefined ? { tail: { cpuMs: tailMs, wallMs: 6000 } } : {}),
    ...(spans !== undefined ? { otel: { requests: 3, spans: spans + 50, spansFromWindow: spans, spansInWindow: spans - 10, bytes: 1000, spansBeforeStop: spans + 50 } } : {})
  }
}

describe('tracing and versus figures', () => {
  it('computes the cost per turn of tracing (window, and with the export after it) and app ÷ relay-raw / app-base', () => {
    const targets: TargetName[] = ['relay-raw', 'app', 'app-otel', 'app-base']
    const s = summarize({
      targets, p99LimitMs: 50, idle: [],
      runs: [
        run('relay-raw', 100, { p99: 5, cpuMs: 200 }),
        run('app', 100, { p99: 8, cpuMs: 400, tailMs: 10 }),
        run('app-otel', 100, { p99: 10, cpuMs: 450, tailMs: 30, spans: 350 }),
        run('app-base', 100, { p99: 16, cpuMs: 500 })
      ]
    })
    // app: 400 ms / 100 turns = 4000 µs per turn; app-otel 4500: tracing costs 500 µs per turn in the window, 700 with the export after it.
    expect(s.tracing).toEqual([{
      sessions: 100, turnsPerRun: 100, appCpuUsPerTurn: 4000, otelCpuUsPerTurn: 4500, costUsPerTurn: 500, costPct: 12.5,
      costWithExportUsPerTurn: 700, costWithExportPct: (700 / 4100) * 100,
      appCpuUsPerToken: 400, otelCpuUsPerToken: 450, appP99: 8, otelP99: 10,
      spans: 350, spansInWindow: 340, spansAtShutdown: 0, spansPerTurn: 3.5
    }])
    expect(s.otel).toEqual([{ check: 'app-otel exported ≥ 1 span per turn @100', ok: true, detail: '350 spans from the windows on (340 within them; 400 with the warm-up) for 100 turns' }])
    expect(s.versus).toEqual([{
      sessions: 100, cpuUsPerToken: 400, p99: 8,
      vs: [
        { target: 'relay-raw', cpuUsPerToken: 200, p99: 5, cpuRatio: 2, p99Ratio: 1.6 },
        { target: 'app-base', cpuUsPerToken: 500, p99: 16, cpuRatio: 0.8, p99Ratio: 0.5 }
      ]
    }])
    expect(s.base).toEqual([{ check: 'app CPU/token within 5 % of app-base @100', ok: true, detail: '400.0 vs 500.0 µs (-20.0 %); p99 8.0 vs 16.0 ms (0.50×)' }])
    const report = { summary: s, options: { exportTailMs: 6000 } } as unknown as BenchReport
    expect(renderVersusTable(report).split('\n')).toEqual([
      '| sessions | app CPU µs/token | relay-raw | app ÷ relay-raw | app-base | app ÷ app-base | app p99 ms | relay-raw | app ÷ relay-raw | app-base | app ÷ app-base |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      '| 100 | 400.0 | 200.0 | 2.00× | 500.0 | 0.80× | 8.0 | 5.0 | 1.60× | 16.0 | 0.50× |'
    ])
    expect(renderTracingTable(report).split('\n')[2]).toBe('| 100 | 100 | 4000 | 4500 | 500 | +12.5 % | **700** | +17.1 % | 450.0 (400.0) | 10.0 (8.0) | 350 (340 / 0) | 3.50 |')
  })

  it('leaves both tables out when only app ran', () => {
    const s = summarize({ targets: ['app'], p99LimitMs: 50, idle: [], runs: [run('app', 100, { p99: 8, cpuMs: 400 })] })
    expect([s.versus, s.tracing, s.base, s.otel]).toEqual([[], [], [], []])
    const report = { summary: s, options: {} } as unknown as BenchReport
    expect(renderVersusTable(report)).toBe('')
    expect(renderTracingTable(report)).toBe('')
  })
})

describe('bench smoke: app-otel and app-base', () => {
  it('runs relay-raw, app, app-otel and app-base for 2 sessions × 5 tokens and reports tracing cost and ratios', async () => {
    const lines: string[] = []
    const report = await runBenchmark({
      ladder: [2], runs: 1, tokens: 5, rate: 100, ttftMs: 20, turns: 1, thinkMs: 0, rampPerSec: 200, staggerMs: 30,
      idleSockets: 0, idleSteps: 1, acceptSockets: 0, targets: ['relay-raw', 'app', 'app-otel', 'app-base'], appEntry: 'tsx',
      warmup: false, p99LimitMs: 50, maxOtherCpuPct: 1000, noiseRetries: 0, exportTailMs: 300,
      log: (l) => lines.push(l)
    })
    expect(report.skipped).toEqual([])
    for (const r of report.runs) {
      expect(r.error).toBeUndefined()
      expect(r.result!.tokens).toEqual({ expected: 10, received: 10, lost: 0, duplicated: 0, outOfOrder: 0, garbage: 0 })
      expect(r.result!.turns).toEqual({ expected: 2, done: 2, contentMismatch: 0 })
      expect(r.serverExitCode).toBe(0)
      // The wait after the window: app and app-otel only.
      expect(r.tail !== undefined).toBe(r.target === 'app' || r.target === 'app-otel')
    }
    expect(integrityFailures(report)).toBe(0)

    // app-base ran the base revision from a temporary tree that is gone now.
    expect(report.base).toEqual({ rev: DEFAULT_BASE_REV, commit: '5a5ddd8' })
    const dir = /extracted into (\S+)/.exec(lines.find((l) => l.startsWith('app-base:')) ?? '')?.[1]
    expect(dir).toBeDefined()
    expect(existsSync(dir!)).toBe(false)

    // Tracing really ran: the receiver got spans (turn, model call, store batches) for every turn.
    const otelRun = report.runs.find((r) => r.target === 'app-otel')!
    expect(otelRun.otel!.spansFromWindow).toBeGreaterThanOrEqual(2 * 2)
    expect(otelRun.otel!.spans).toBe(otelRun.otel!.spansFromWindow) // no warm-up here
    expect(report.otel!.spans).toBe(otelRun.otel!.spans)
    expect(report.otel!.unparsed).toBe(0)
    expect(report.summary.otel).toMatchObject([{ check: 'app-otel exported ≥ 1 span per turn @2', ok: true }])
    const [t] = report.summary.tracing
    expect(t).toMatchObject({ sessions: 2, turnsPerRun: 2, spans: otelRun.otel!.spans })
    for (const v of [t.appCpuUsPerTurn, t.otelCpuUsPerTurn, t.costUsPerTurn, t.costWithExportUsPerTurn, t.otelCpuUsPerToken, t.otelP99]) {
      expect(Number.isFinite(v)).toBe(true)
    }

    // app against relay-raw and app-base.
    const [v] = report.summary.versus
    expect(v.vs.map((x) => x.target)).toEqual(['relay-raw', 'app-base'])
    for (const x of v.vs) expect(Number.isFinite(x.p99Ratio) && x.p99Ratio > 0).toBe(true)
    expect(report.summary.base.map((b) => b.check)).toEqual(['app CPU/token within 5 % of app-base @2'])

    const md = renderMarkdown(report, 'npm run bench -- smoke')
    expect(md).toMatch(/\| app-base \| 2 \| [\d.]+ \|/)
    expect(md).toMatch(/\| app-otel \| 2 \| [\d.]+ \|/)
    expect(md).toContain('app-base (the previous app: `5a5ddd8` = 5a5ddd8')
    // CPU is read in 10 ms ticks: at this scale app's share can be 0, and a share of 0 is n/a.
    expect(md).toMatch(/\| 2 \| 2 \| \d+ \| \d+ \| -?\d+ \| ([+-][\d.]+ %|n\/a) \| \*\*-?\d+\*\* \| ([+-][\d.]+ %|n\/a) \|/)
    expect(md).toMatch(/\| tracing \| app-otel exported ≥ 1 span per turn @2 \| pass \|/)
    expect(md).toMatch(/\| vs base \| app CPU\/token within 5 % of app-base @2 \| (pass|\*\*fail\*\*) \|/)
  }, 90_000)
})
