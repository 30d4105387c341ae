/** get_system_metrics returns real, plausible host figures and caches the host sample for a second. */
import os from 'node:os'
import { describe, expect, it } from 'vitest'
import { systemMetricsTool } from '../../src/tools/system-metrics.js'
import { createToolRegistry } from '../../src/tools/registry.js'

const ctx = { signal: new AbortController().signal, sessionId: 's' }

describe('get_system_metrics', () => {
  it('reports real CPU, memory, uptime and process figures', async () => {
    let live = 4
    const reg = createToolRegistry({ tools: [systemMetricsTool({ liveSessions: () => live })], timeoutMs: 10_000 })
    const out = await reg.run({ name: 'get_system_metrics', arguments: '' }, ctx)
    expect(out.ok).toBe(true)
    const m = (out as { result: any }).result
    expect(m.cpu.cores).toBe(os.cpus().length)
    expect(m.cpu.loadPercent).toBeGreaterThanOrEqual(0)
    expect(m.cpu.loadPercent).toBeLessThanOrEqual(100)
    expect(m.memory.totalBytes).toBe(os.totalmem())
    expect(m.memory.usedBytes + m.memory.availableBytes).toBe(m.memory.totalBytes)
    expect(m.memory.usedPercent).toBeCloseTo((m.memory.usedBytes / m.memory.totalBytes) * 100, 0)
    expect(Math.abs(m.uptimeS - os.uptime())).toBeLessThan(5)
    expect(m.process.rssBytes).toBeGreaterThan(m.process.heapUsedBytes)
    expect(m.liveSessions).toBe(4)
    expect(m.nodeVersion).toBe(process.version)
    expect(Date.now() - Date.parse(m.timestamp)).toBeLessThan(5_000)

    // A burst within the cache window shares one host sample but sees live per-call figures.
    live = 7
    const again = await reg.run({ name: 'get_system_metrics', arguments: '{"extra": true}' }, ctx)
    expect(again).toMatchObject({ ok: true, result: { liveSessions: 7, cpu: m.cpu, uptimeS: m.uptimeS } })
  })

  it('takes no required parameters', () => {
    const spec = createToolRegistry({ tools: [systemMetricsTool({ liveSessions: () => 0 })], timeoutMs: 1 }).specs()[0]
    expect(spec.function.parameters).toEqual({ type: 'object', properties: {} })
  })
})
