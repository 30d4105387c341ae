/**
 * prom-client's classes and default collectors, loaded one by one. Its index loads the process-CPU collector, which
 * requires @opentelemetry/api (for exemplars) — OpenTelemetry must not load unless tracing is configured (DESIGN §12),
 * so the CPU counters are written here with the same names and the rest of the defaults are prom-client's own.
 */
import { createRequire } from 'node:module'
import type * as Prom from 'prom-client'

const require = createRequire(import.meta.url)

export const Registry = require('prom-client/lib/registry') as typeof Prom.Registry
export const Counter = require('prom-client/lib/counter') as typeof Prom.Counter
export const Gauge = require('prom-client/lib/gauge') as typeof Prom.Gauge
export const Histogram = require('prom-client/lib/histogram') as typeof Prom.Histogram
export type Registry = Prom.Registry

type Collector = (registry: Prom.Registry, config: Record<string, unknown>) => void

/** prom-client's defaults but processCpuTotal (see above), in its own order. */
const DEFAULTS = [
  'processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors', 'eventLoopLag',
  ...(typeof (process as { getActiveResourcesInfo?: unknown }).getActiveResourcesInfo === 'function' ? ['processResources'] : []),
  'processHandles', 'processRequests', 'heapSizeAndUsed', 'heapSpacesSizeAndUsed', 'version', 'gc'
]

/** The process metrics (`process_*`, `nodejs_*`) on `registry`. */
export function collectProcessMetrics (registry: Prom.Registry): void {
  const config = { eventLoopMonitoringPrecision: 10 }
  for (const name of DEFAULTS) (require(`prom-client/lib/metrics/${name}`) as Collector)(registry, config)
  const registers = [registry]
  let last = process.cpuUsage()
  const user = new Counter({ name: 'process_cpu_user_seconds_total', help: 'Total user CPU time spent in seconds.', registers })
  const system = new Counter({ name: 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.', registers })
  new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers,
    collect () {
      const now = process.cpuUsage()
      const u = (now.user - last.user) / 1e6
      const s = (now.system - last.system) / 1e6
      last = now
      user.inc(u)
      system.inc(s)
      this.inc(u + s)
    }
  })
}
