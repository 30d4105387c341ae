/** Smoke test of `npm run bench` at a tiny scale: relay, relay-raw and app in their own processes, figures present, nothing lost. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { integrityFailures, renderMarkdown, writeResults } from '../../bench/report.js'
import { runBenchmark } from '../../bench/suite.js'

describe('bench smoke', () => {
  it('runs relay, relay-raw and app for 3 sessions × 5 tokens and reports complete figures', async () => {
    const lines: string[] = []
    const report = await runBenchmark({
      ladder: [3], runs: 1, tokens: 5, rate: 100, ttftMs: 20, turns: 1, thinkMs: 0, rampPerSec: 200, staggerMs: 30,
      idleSockets: 40, idleSteps: 2, targets: ['relay', 'relay-raw', 'app'], appEntry: 'tsx', warmup: false, p99LimitMs: 50,
      maxOtherCpuPct: 1000, noiseRetries: 0,
      log: (l) => lines.push(l)
    })
    expect(report.skipped).toEqual([])
    expect(report.runs.map((r) => r.target).sort()).toEqual(['app', 'relay', 'relay-raw'])
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
    expect(report.summary.points.map((p) => `${p.target}@${p.sessions}`).sort()).toEqual(['app@3', 'relay-raw@3', 'relay@3'])
    expect(report.summary.capacity.map((c) => c.target)).toEqual(['relay', 'relay-raw', 'app'])
    expect(report.summary.floor.some((v) => v.check.startsWith('app p99'))).toBe(true)
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
  }, 60_000)
})
