/** get_system_metrics: real CPU, memory and uptime figures of the server (systeminformation), cached for a second. */
import si from 'systeminformation'
import { z } from 'zod'
import { defineTool } from './registry.js'
import type { ToolDefinition } from './types.js'

export interface SystemMetrics {
  cpu: { loadPercent: number; cores: number }
  memory: { totalBytes: number; usedBytes: number; availableBytes: number; usedPercent: number }
  uptimeS: number
  process: { rssBytes: number; heapUsedBytes: number; uptimeS: number }
  liveSessions: number
  nodeVersion: string
  timestamp: string
}

const CACHE_MS = 1_000
const round1 = (n: number) => Math.round(n * 10) / 10

type HostFigures = Pick<SystemMetrics, 'cpu' | 'memory' | 'uptimeS'>

async function readHost (): Promise<HostFigures> {
  const [load, mem] = await Promise.all([si.currentLoad(), si.mem()])
  // "used" without buffers/cache, the figure people mean by memory in use.
  const used = Math.max(0, mem.total - mem.available)
  return {
    cpu: { loadPercent: round1(load.currentLoad), cores: load.cpus.length || 1 },
    memory: { totalBytes: mem.total, usedBytes: used, availableBytes: mem.available, usedPercent: mem.total > 0 ? round1((used / mem.total) * 100) : 0 },
    uptimeS: Math.round(Number(si.time().uptime))
  }
}

export function systemMetricsTool ({ liveSessions }: { liveSessions: () => number }): ToolDefinition {
  // One shared read per second: a burst of calls (parallel sessions, parallel tool calls) costs one sample.
  let cached: { at: number; value: Promise<HostFigures> } | undefined
  const host = (): Promise<HostFigures> => {
    const now = Date.now()
    if (!cached || now - cached.at > CACHE_MS) {
      const value = readHost()
      cached = { at: now, value }
      // The window starts when the sample is ready: currentLoad itself takes a moment to measure.
      value.then(() => { if (cached?.value === value) cached.at = Date.now() }, () => { if (cached?.value === value) cached = undefined })
    }
    return cached.value
  }

  return defineTool({
    name: 'get_system_metrics',
    description: 'Current metrics of the server this assistant runs on: CPU load and cores, memory use, uptime, process memory, live chat sessions. Takes no arguments.',
    // Extra keys a model invents are ignored rather than refused.
    parameters: z.object({}),
    handler: async (): Promise<SystemMetrics> => {
      const figures = await host()
      const mem = process.memoryUsage()
      return {
        ...figures,
        process: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, uptimeS: Math.round(process.uptime()) },
        liveSessions: liveSessions(),
        nodeVersion: process.version,
        timestamp: new Date().toISOString()
      }
    }
  })
}
