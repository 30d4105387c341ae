/** The report's auth-cost checks (app-auth against app) and the accept-rate summary, on made-up runs. */
import { describe, expect, it } from 'vitest'
import type { AcceptResult } from '../../bench/accept-run.js'
import type { LoadResult } from '../../bench/load-run.js'
import { renderAcceptTable, renderMarkdown } from '../../bench/report.js'
import type { AcceptRecord, BenchReport, RunRecord } from '../../bench/suite.js'
import { summarize } from '../../bench/summary.js'
import type { TargetName } from '../../bench/targets.js'

const dist = (p99: number) => ({ count: 100, p50: p99 / 4, p95: p99 / 2, p99, max: p99 })

function run (target: TargetName, sessions: number, { p99, cpuUs }: { p99: number, cpuUs: number }): RunRecord {
  const result: LoadResult = {
    sessions: { requested: sessions, connected: sessions, refused: 0, closedEarly: 0 },
    turns: { expected: sessions, done: sessions, contentMismatch: 0 },
    tokens: { expected: 100, received: 100, lost: 0, duplicated: 0, outOfOrder: 0, garbage: 0 },
    latencyMs: dist(p99), ttftMs: dist(p99), ackMs: dist(1),
    errors: {}, windowMs: 1000, windowHrUs: [0, 1],
    server: { cpuMs: cpuUs / 10, cpuPct: 10, cpuUsPerToken: cpuUs, rssBytes: 1e8, hwmBytes: 1e8 },
    upstreamCpuPct: 1, loadgenCpuPct: 1, otherCpuPct: 0
  }
  return { target, sessions, run: 1, result }
}

function accept (target: TargetName, r: number, { perSec, cpuUs, accepted = 100 }: { perSec: number, cpuUs: number, accepted?: number }): AcceptRecord {
  const result: AcceptResult = {
    sockets: { requested: 100, accepted, refused: 100 - accepted },
    wallMs: (accepted * 1000) / perSec, acceptedPerSec: perSec,
    server: { cpuMs: (cpuUs * accepted) / 1000, cpuPct: 50, cpuUsPerSocket: cpuUs },
    connectMs: dist(10), loadgenCpuPct: 20, otherCpuPct: 0, errors: {}
  }
  return { target, run: r, result, serverExitCode: 0 }
}

const targets: TargetName[] = ['app', 'app-auth']

describe('auth cost checks', () => {
  it('passes app-auth within 5 % of app (or below it) and fails it above, at each step', () => {
    const s = summarize({
      targets, p99LimitMs: 50, idle: [],
      runs: [
        run('app', 100, { p99: 10, cpuUs: 60 }), run('app-auth', 100, { p99: 10.5, cpuUs: 57 }),
        run('app', 300, { p99: 20, cpuUs: 50 }), run('app-auth', 300, { p99: 21.2, cpuUs: 52.6 })
      ]
    })
    expect(s.auth.map((v) => [v.check, v.ok, v.detail])).toEqual([
      ['app-auth CPU/token within 5 % of app @100', true, '57.0 vs 60.0 µs (-5.0 %)'],
      ['app-auth p99 within 5 % of app @100', true, '10.5 vs 10.0 ms (+5.0 %)'],
      ['app-auth CPU/token within 5 % of app @300', false, '52.6 vs 50.0 µs (+5.2 %)'],
      ['app-auth p99 within 5 % of app @300', false, '21.2 vs 20.0 ms (+6.0 %)']
    ])
    expect(s.accept).toEqual([])
    // app-auth is held to the relay floor like app; without the relay there is nothing to compare.
    expect(s.floor.map((v) => v.check)).toEqual([])
  })

  it('summarizes the accept test per target (medians of runs) and checks that app-auth accepted every socket', () => {
    const s = summarize({
      targets, p99LimitMs: 50, idle: [], runs: [],
      accept: [
        accept('app', 1, { perSec: 900, cpuUs: 400 }), accept('app-auth', 1, { perSec: 600, cpuUs: 700 }),
        accept('app', 2, { perSec: 1000, cpuUs: 380 }), accept('app-auth', 2, { perSec: 500, cpuUs: 800, accepted: 99 }),
        { target: 'app-auth', run: 3, error: 'server exited' }
      ]
    })
    expect(s.accept.map((a) => a.target)).toEqual(['app', 'app-auth'])
    expect(s.accept[0]).toMatchObject({ runs: 2, failedRuns: 0, requested: 200, accepted: 200, refused: 0, perSec: 950, perSecMin: 900, perSecMax: 1000, cpuUsPerSocket: 390 })
    expect(s.accept[1]).toMatchObject({ runs: 2, failedRuns: 1, requested: 200, accepted: 199, refused: 1, perSec: 550, cpuUsPerSocket: 750 })
    expect(s.auth).toEqual([{ check: 'app-auth accepted every socket', ok: false, detail: '199 / 200 (1 runs failed)' }])
    expect(s.integrity.refused).toBe(1)
    expect(s.integrity.failedRuns).toBe(1)

    const report = { summary: s, options: { acceptSockets: 100, acceptParallel: 10 } } as unknown as BenchReport
    expect(renderAcceptTable(report).split('\n').slice(2)).toEqual([
      '| app | 200 / 200 | 950 (900–1000) | 1.00× | 390 (380–400) | 1.00× | 2.5 / 10.0 | 50 | 20 | 0 |',
      '| app-auth | 199 / 200 (1 refused) (1 runs failed) | 550 (500–600) | 0.58× | 750 (700–800) | 1.92× | 2.5 / 10.0 | 50 | 20 | 0 |'
    ])
  })

  it('leaves the auth checks and the accept table out when app-auth did not run', () => {
    const s = summarize({ targets: ['app'], p99LimitMs: 50, idle: [], runs: [run('app', 100, { p99: 10, cpuUs: 60 })] })
    expect(s.auth).toEqual([])
    const report = {
      summary: s, startedAt: '2026-01-01T00:00:00.000Z', durationS: 1, skipped: [], runs: [], idle: [], accept: [],
      machine: { commit: 'x', cpus: 2, cpuModel: 'cpu', memoryGB: 1, node: 'v20', os: 'Linux' },
      options: { turns: 1, tokens: 5, rate: 60, ttftMs: 0, rampPerSec: 1, staggerMs: 0, runs: 1, maxOtherCpuPct: 30, noiseRetries: 0, p99LimitMs: 50 }
    } as unknown as BenchReport
    expect(renderAcceptTable(report)).toBe('')
    const md = renderMarkdown(report, 'bench')
    expect(md).not.toContain('accept rate')
    expect(md).not.toContain('auth cost')
    expect(md).not.toContain('app-auth')
  })
})
