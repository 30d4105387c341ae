/** Reads a process's CPU time and memory from /proc (Linux), so the server under test needs no bench code. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let clkTck: number | undefined
const ticksPerSecond = (): number => {
  if (clkTck === undefined) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { clkTck = 100 }
  }
  return clkTck
}

/** User + system CPU time of `pid` in ms (resolution 1 tick, usually 10 ms). */
export function cpuMs (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces) start at state (field 3); utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond()
}

export interface MemInfo {
  rssBytes: number
  /** Peak RSS since the process started. */
  hwmBytes: number
}

export function memInfo (pid: number): MemInfo {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') }
}

/** CPU and wall clock between two calls. */
export function cpuMeter (pid: number) {
  const startCpu = cpuMs(pid)
  const startWall = performance.now()
  return () => {
    const cpu = cpuMs(pid) - startCpu
    const wall = performance.now() - startWall
    return { cpuMs: cpu, wallMs: wall, cpuPct: wall > 0 ? (100 * cpu) / wall : 0 }
  }
}

/** CPU time all cores spent busy since boot (ms): with the three bench processes subtracted, what else ran on the machine. */
export function machineBusyMs (): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
  return ((user + nice + system + irq + softirq + (steal || 0)) * 1000) / ticksPerSecond()
}
