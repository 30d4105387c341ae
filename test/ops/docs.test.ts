/** docs/operations.md names every metric with its help text as the server registers it. */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { METRIC_HELP } from '../../src/metrics/prometheus.js'

describe('docs/operations.md', () => {
  it('documents every metric name with its help text', () => {
    const doc = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8')
    for (const [name, help] of Object.entries(METRIC_HELP)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${name}\` |`))
      expect(row, name).toBeDefined()
      expect(row, name).toContain(help)
    }
  })
})

describe('docs/grafana-dashboard.json', () => {
  it('is the dashboard panels.ts describes, and queries only metrics the server exports', async () => {
    const { grafanaDashboard } = await import('../../bench/dashboard/panels.js')
    const file = JSON.parse(readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> }
    expect(file).toEqual(grafanaDashboard())
    const exprs = file.panels.flatMap((p) => p.targets.map((t) => t.expr))
    const names = new Set(exprs.flatMap((e) => e.match(/\b(?:rtb|gen_ai|process)_\w+/g) ?? []).map((n) => n.replace(/_(bucket|sum|count)$/, '')))
    for (const name of names) expect(name in METRIC_HELP || name === 'process_cpu_seconds_total', name).toBe(true)
    for (const required of ['rtb_sockets_open', 'rtb_sessions_live', 'rtb_turns_total', 'rtb_time_to_first_token_seconds', 'rtb_added_latency_seconds', 'rtb_tool_calls_total', 'rtb_store_pending_events', 'rtb_summary_jobs']) {
      expect(names.has(required), required).toBe(true)
    }
  })
})
