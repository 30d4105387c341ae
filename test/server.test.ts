/** `npm start` as a user runs it: no .env, embedded defaults, page + offline chat on 127.0.0.1:8001, SIGTERM → exit 0. */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { TestClient } from './support/app.js'

const root = fileURLToPath(new URL('..', import.meta.url))

async function portFree (port: number): Promise<boolean> {
  const probe = createServer()
  try {
    probe.listen(port, '127.0.0.1')
    await once(probe, 'listening')
    return true
  } catch {
    return false
  } finally {
    probe.close()
  }
}

/** The environment of a fresh shell: nothing of ours set, no .env read. */
function cleanEnv (extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(OPENAI_|LLM_|STORAGE|DATABASE_|SUPABASE_|PORT|HOST|LOG_LEVEL|OFFLINE_|TEST_DATABASE_URL|AUTH_|API_KEYS)/.test(k)) continue
    env[k] = v
  }
  return { ...env, DOTENV_CONFIG_PATH: '/nonexistent/.env', ...extra }
}

describe('npm start', () => {
  it('serves the page and an offline chat on the defaults, and exits 0 on SIGTERM', async () => {
    // The default port when it is free (CI); otherwise any port, so a developer's running server does not fail the test.
    const useDefault = await portFree(8001)
    const child = spawn('npm', ['start', '--silent'], { cwd: root, env: cleanEnv(useDefault ? {} : { PORT: '0' }), stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>
    try {
      const address = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no listening line in 90 s:\n${out}`)), 90_000)
        child.stdout.on('data', () => {
          const m = /"address":"(http:\/\/[^"]+)"/.exec(out)
          if (m) { clearTimeout(timer); resolve(m[1]) }
        })
        void exited.then(() => reject(new Error(`npm start exited early:\n${out}`)))
      })
      if (useDefault) expect(address).toBe('http://127.0.0.1:8001')
      expect(out).toContain('offline model')

      const page = await fetch(`${address}/`)
      expect(page.status).toBe(200)
      expect(await page.text()).toContain('<html')
      const health = await (await fetch(`${address}/health`)).json()
      expect(health).toMatchObject({ status: 'ok', model: { provider: 'offline', offline: true }, store: { kind: 'memory', ok: true } })

      const client = await TestClient.connect(`${address.replace('http', 'ws')}/ws/session/npm-start-test`)
      client.send({ type: 'user_message', content: 'hello from the start test' })
      const done = await client.waitTurnEnd(undefined, 30_000)
      expect(done.finishReason).toBe('stop')
      expect(client.ofType('delta').length).toBeGreaterThanOrEqual(2)

      child.kill('SIGTERM')
      const [code] = await exited
      expect((await client.closed).code).toBe(1012)
      expect(code).toBe(0)
    } finally {
      child.kill('SIGKILL')
    }
  }, 150_000)

  it.each([
    [{ STORAGE: 'postgres', DATABASE_URL: 'postgres://app:hunter2-secret@127.0.0.1:1/x' }, /^Could not start: STORAGE=postgres: postgres unavailable during init: ECONNREFUSED .* \(check DATABASE_URL\)$/],
    [{ HEARTBEAT_MS: '99999999999' }, /^Invalid configuration: HEARTBEAT_MS: at most 2147483647 ms/],
    [{ ALLOWED_ORIGINS: 'chat.example.com' }, /^Invalid configuration: ALLOWED_ORIGINS: not an origin: chat\.example\.com/],
    // DESIGN §10: an open server on a reachable address is refused unless AUTH_DISABLED=true says it is intended.
    [{ HOST: '0.0.0.0' }, /^Invalid configuration: HOST: 0\.0\.0\.0 is not a loopback address .*AUTH_JWT_SECRET.*API_KEYS.*AUTH_DISABLED=true/],
    [{ AUTH_DISABLED: 'true', API_KEYS: 'ci:hunter2-secret-0123456789' }, /^Invalid configuration: AUTH_DISABLED: /]
  ])('refuses to start on %o with exit 1 and one line on stderr, no secret in it', async (env, line) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: root, env: cleanEnv({ PORT: '0', ...env }), stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    let stdout = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    const [code] = await once(child, 'exit') as [number | null]
    expect(code).toBe(1)
    expect(stderr.endsWith('\n')).toBe(true)
    expect(stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(stderr.trimEnd()).toMatch(line)
    expect(stderr + stdout).not.toContain('hunter2')
  }, 30_000)

  it('HOST=0.0.0.0 with AUTH_DISABLED=true starts open, with a warning, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: root, env: cleanEnv({ PORT: '0', HOST: '0.0.0.0', AUTH_DISABLED: 'true', LOG_LEVEL: 'info' }), stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>
    try {
      const port = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', () => {
          const m = /"address":"http:\/\/[^"]+:(\d+)"/.exec(out)
          if (m) resolve(m[1])
        })
        void exited.then(() => reject(new Error(`exited before listening:\n${out}`)))
      })
      const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string; auth?: boolean })
      const warning = lines.find((l) => l.msg.startsWith('AUTH_DISABLED=true'))
      expect(warning).toMatchObject({ level: 40 })
      expect(warning!.msg).toMatch(/anyone who can reach/)
      expect(lines.find((l) => l.msg.startsWith('listening on'))).toMatchObject({ auth: false })
      const me = await fetch(`http://127.0.0.1:${port}/api/me`)
      expect(me.status).toBe(200)
      expect(await me.json()).toMatchObject({ principal: null })
      child.kill('SIGTERM')
      const [code] = await exited
      expect(code).toBe(0)
    } finally {
      child.kill('SIGKILL')
    }
  }, 30_000)
})
