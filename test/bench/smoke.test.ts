/**
 * Smoke test of `npm run bench` at a tiny scale: relay, relay-raw, app and app-auth (JWKS sign-in) in their own processes,
 * the accept-rate test on app and app-auth, figures present, nothing lost.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { integrityFailures, renderMarkdown, writeResults } from '../../bench/report.js'
import { runBenchmark } from '../../bench/suite.js'

describe('bench smoke', () => {
  it('runs relay, relay-raw, app and app-auth for 3 sessions × 5 tokens, accepts 30 sockets, and reports complete figures', async () => {
    const lines: string[] = []
    const report = await runBenchmark({
      ladder: [3], runs: 1, tokens: 5, rate: 100, ttftMs: 20, turns: 1, thinkMs: 0, rampPerSec: 200, staggerMs: 30,
      idleSockets: 40, idleSteps: 2, acceptSockets: 30, acceptParallel: 5, targets: ['relay', 'relay-raw', 'app', 'app-auth'], appEntry: 'tsx', warmup: false, p99LimitMs: 50,
      maxOtherCpuPct: 1000, noiseRetries: 0,
      log: (l) => lines.push(l)
    })
    expect(report.skipped).toEqual([])
    expect(report.runs.map((r) => r.target).sort()).toEqual(['app', 'app-auth', 'relay', 'relay-raw'])
    for (const run of report.runs) {
      expect(run.error).toBeUndefined()
      const r = run.result!
      expect(r.sessions).toEqual({ requested: 3, connected: 3, refused: 0, closedEarly: 0 })
      expect(r.turns).toEqual({ expected: 3, done: 3, contentMismatch: 0 })
      expect(r.tokens).toEqual({ expected: 15, received: 15, lost: 0, duplicated: 0, outOfOrder: 0, garbage: 0 })
      expect(r.latencyMs.count).toBe(15)
      expect(r.ttftMs.count).toBe(3)
      expect(r.ackMs.count).toBe(3)
      for (const v of [r.latencyMs.p50, r.latencyMs.p99, r.ttftMs.p99, r.server.cpuUsPerToken, r.server.cpuPct]) {
        expect(Number.isFinite(v) && v >= 0).toBe(true)
      }
      expect(r.latencyMs.p99).toBeGreaterThanOrEqual(r.latencyMs.p50)
      expect(r.server.rssBytes).toBeGreaterThan(10 * 2 ** 20)
      expect(r.errors).toEqual({})
      // One clock on one machine: upstream and load generator agree to well under a millisecond.
      expect(Math.abs(run.clock!.offsetMs)).toBeLessThan(1)
      expect(run.serverExitCode).toBe(0)
    }
    expect(report.summary.points.map((p) => `${p.target}@${p.sessions}`).sort()).toEqual(['app-auth@3', 'app@3', 'relay-raw@3', 'relay@3'])
    expect(report.summary.capacity.map((c) => c.target)).toEqual(['relay', 'relay-raw', 'app', 'app-auth'])
    expect(report.summary.floor.some((v) => v.check.startsWith('app p99'))).toBe(true)
    expect(report.summary.floor.some((v) => v.check.startsWith('app-auth p99'))).toBe(true)

    // app-auth really signed in: each of its servers fetched the bench's JWKS once (the app fetches it on the first token).
    const auth = report.auth!
    expect(auth.servers).toBe(3) // load run, accept test, idle test
    expect(auth.jwksFetches).toBe(auth.servers)
    // What signing in costs: informational checks against app at each step, and every accept-test socket signed in.
    expect(report.summary.auth.map((v) => v.check)).toEqual([
      'app-auth CPU/token within 5 % of app @3', 'app-auth p99 within 5 % of app @3', 'app-auth accepted every socket'
    ])
    expect(report.summary.auth[0].detail).toMatch(/^[\d.]+ vs [\d.]+ µs \([+-][\d.]+ %\)$/)
    expect(report.summary.auth[1].detail).toMatch(/^[\d.]+ vs [\d.]+ ms \([+-][\d.]+ %\)$/)
    expect(report.summary.auth[2]).toMatchObject({ ok: true, detail: '30 / 30' })

    // Accept rate: app and app-auth each accepted all 30 sockets, with a rate, CPU per socket and connect times.
    expect(report.accept.map((a) => a.target).sort()).toEqual(['app', 'app-auth'])
    for (const rec of report.accept) {
      expect(rec.error).toBeUndefined()
      expect(rec.serverExitCode).toBe(0)
      expect(rec.result!.sockets).toEqual({ requested: 30, accepted: 30, refused: 0 })
      expect(rec.result!.errors).toEqual({})
      expect(rec.result!.connectMs.count).toBe(30)
    }
    expect(report.summary.accept.map((a) => a.target)).toEqual(['app', 'app-auth'])
    for (const a of report.summary.accept) {
      expect(a).toMatchObject({ runs: 1, failedRuns: 0, requested: 30, accepted: 30, refused: 0 })
      expect(a.perSec).toBeGreaterThan(0)
      expect(Number.isFinite(a.perSec)).toBe(true)
      expect(Number.isFinite(a.cpuUsPerSocket) && a.cpuUsPerSocket >= 0).toBe(true)
      expect(a.connectP99).toBeGreaterThanOrEqual(a.connectP50)
    }
    expect(report.summary.reach.map((v) => v.check)).toEqual(['relay-raw CPU/token ≤ 0.5× relay @3'])
    expect(report.summary.reach[0].detail).toMatch(/^[\d.]+ vs ≤ [\d.]+ µs \([\d.]+×\)$/)
    for (const idle of report.summary.idle) {
      expect(idle.error).toBeUndefined()
      expect(idle.open).toBe(40)
      expect(idle.answeredPing).toBe(40)
      expect(Number.isFinite(idle.kbPerSocket)).toBe(true)
    }
    expect(integrityFailures(report)).toBe(0)

    const md = renderMarkdown(report, 'npm run bench -- smoke')
    expect(md).toMatch(/\| relay \| 3 \| [\d.]+ \|/)
    expect(md).toMatch(/\| app \| 3 \| [\d.]+ \|/)
    expect(md).toMatch(/\| relay-raw \| 3 \| [\d.]+ \|/)
    expect(md).toMatch(/\| app-auth \| 3 \| [\d.]+ \|/)
    expect(md).toMatch(/\| app-auth \| 30 \/ 30 \| \d+ \(\d+–\d+\) \| [\d.]+× \| \d+ \(\d+–\d+\) \| [\d.]+× \|/)
    expect(md).toMatch(/\| auth cost \| app-auth CPU\/token within 5 % of app @3 \| (pass|\*\*fail\*\*) \|/)
    expect(md).toMatch(/\| auth cost \| app-auth accepted every socket \| pass \| 30 \/ 30 \|/)
    expect(md).toMatch(/\| reachable \| relay-raw CPU\/token ≤ 0\.5× relay @3 \| (pass|\*\*fail\*\*) \|/)
    expect(md).toContain('Integrity: 0 lost, 0 duplicated')
    const dir = mkdtempSync(join(tmpdir(), 'bench-'))
    try {
      const files = writeResults({ report, dir, command: 'smoke' })
      expect(JSON.parse(readFileSync(files.json, 'utf8')).summary.integrity.lost).toBe(0)
      expect(readFileSync(join(dir, 'latest.md'), 'utf8')).toBe(md.replace('npm run bench -- smoke', 'smoke'))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    expect(lines.filter((l) => l.includes('FAILED'))).toEqual([])
  }, 90_000)
})
