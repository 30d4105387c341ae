/** The server as a real child process (`node --import tsx src/server.ts`), for restart, crash and signal tests. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface ServerProcess {
  child: ChildProcess
  /** http://127.0.0.1:PORT */
  address: string
  wsUrl: (sessionId: string, after?: number) => string
  /** Everything the process printed so far. */
  output: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Starts the server on an ephemeral port with `env` on top of a test baseline; resolves once it listens. */
export async function startServerProcess (env: Record<string, string>, { timeoutMs = 30_000 } = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { ...process.env, DOTENV_CONFIG_PATH: '/nonexistent/.env', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within ${timeoutMs} ms:\n${out}`)), timeoutMs)
    const check = () => {
      const m = /"address":"(http:\/\/[^"]+)"/.exec(out)
      if (m) { clearTimeout(timer); resolve(m[1]) }
    }
    child.stdout!.on('data', check)
    void exited.then(() => { clearTimeout(timer); reject(new Error(`server exited before listening:\n${out}`)) })
  })
  const ws = address.replace(/^http/, 'ws')
  return {
    child,
    address,
    wsUrl: (id, after) => `${ws}/ws/session/${id}${after === undefined ? '' : `?after=${after}`}`,
    output: () => out,
    exited
  }
}
