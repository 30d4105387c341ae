/** Child processes for the benchmark: spawn with the file-descriptor limit raised, wait for readiness, stop gracefully. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

const live = new Set<ChildProcess>()
/** Kills what is still running when the bench itself exits (Ctrl-C, a crash). */
process.once('exit', () => { for (const c of live) c.kill('SIGKILL') })

export interface Child {
  proc: ChildProcess
  pid: number
  label: string
  /** The last few KB of stderr and stdout, for error messages. */
  output: () => string
}

/**
 * Runs `node <args>` from the repo root (or `cwd`) through `sh -c 'ulimit -n <hard>; exec …'` (same pid), with a clean
 * environment plus `env`, and an IPC channel when asked.
 */
export function spawnNode ({ args, env, ipc = false, label, cwd = ROOT }: {
  args: string[], env: Record<string, string>, ipc?: boolean, label: string
  /** Working directory (the repo root unless told: app-base runs from its extracted tree). */
  cwd?: string
}): Child {
  const base = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'production' }
  const proc = spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...args], {
    cwd,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc' as const] : [])]
  })
  let tail = ''
  const keep = (chunk: Buffer) => { tail = (tail + chunk.toString('utf8')).slice(-4000) }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
  if (proc.pid === undefined) throw new Error(`${label}: spawn failed`)
  return { proc, pid: proc.pid, label, output: () => tail }
}

/** A TypeScript entry under the repo, run through tsx's loader. */
export const tsEntry = (path: string, ...rest: string[]) => ['--import', 'tsx', path, ...rest]

/** Waits for the next IPC message of `type` (rejects if the child exits first or after `timeoutMs`). */
export async function nextMessage<T extends { type: string }> ({ child, type, timeoutMs }: { child: Child, type: string, timeoutMs: number }): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`${child.label}: no '${type}' within ${timeoutMs} ms\n${child.output()}`)) }, timeoutMs)
    const onMessage = (msg: T) => { if (msg?.type === type || msg?.type === 'failed') { cleanup(); resolve(msg) } }
    const onExit = (code: number | null) => { cleanup(); reject(new Error(`${child.label} exited (${code}) before '${type}'\n${child.output()}`)) }
    const cleanup = () => { clearTimeout(timer); child.proc.off('message', onMessage); child.proc.off('exit', onExit) }
    child.proc.on('message', onMessage)
    child.proc.once('exit', onExit)
  })
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort (): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address() as { port: number }
  srv.close()
  await once(srv, 'close')
  return port
}

const healthOk = (url: string) => new Promise<boolean>((resolve) => {
  const req = get(url, (res) => { res.resume(); resolve(res.statusCode === 200) })
  req.on('error', () => resolve(false))
  req.setTimeout(1000, () => { req.destroy(); resolve(false) })
})

/** Polls GET /health until it answers 200; fails fast if the process exits. */
export async function waitForHealth ({ child, url, timeoutMs }: { child: Child, url: string, timeoutMs: number }): Promise<number> {
  const start = performance.now()
  while (performance.now() - start < timeoutMs) {
    if (child.proc.exitCode !== null) throw new Error(`${child.label} exited (${child.proc.exitCode}) before it was ready\n${child.output()}`)
    if (await healthOk(url)) return performance.now() - start
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`${child.label} not ready within ${timeoutMs} ms\n${child.output()}`)
}

/** SIGTERM, then SIGKILL after `timeoutMs`; resolves with the exit code (null when it had to be killed). */
export async function stopChild (child: Child, timeoutMs = 15_000): Promise<number | null> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return child.proc.exitCode
  const exited = once(child.proc, 'exit') as Promise<[number | null]>
  child.proc.kill('SIGTERM')
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), timeoutMs)
  const [code] = await exited
  clearTimeout(timer)
  return code
}
