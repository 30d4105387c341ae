/**
 * DESIGN §11, a careless operator: a second process started under an INSTANCE_ID a running one uses is refused
 * with one line (two would read one channel and take each other's sessions mid-turn); a restart under the same
 * id after a SIGKILL still starts.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { TestClient } from '../support/app.js'
import { restartInstance, startInstance, TEST_REDIS_URL, type Instance } from '../support/cluster.js'
import { applySchema, createScratchDatabase } from '../support/postgres.js'
import { startServerProcess, type ServerProcess } from '../support/server-process.js'

let db: { url: string; drop: () => Promise<void> }
let env: Record<string, string>
let instance: Instance | undefined
let twin: ServerProcess | undefined

beforeAll(async () => {
  db = await createScratchDatabase()
  await applySchema(db.url)
  env = {
    STORAGE: 'postgres', DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, LLM_PROVIDER: 'offline', OFFLINE_TOKEN_DELAY_MS: '5',
    DISCONNECT_GRACE_MS: '600000', SESSION_LEASE_MS: '2000', WRITER_FLUSH_MS: '5', DRAIN_TIMEOUT_MS: '0'
  }
}, 60_000)
afterAll(async () => {
  for (const run of instance?.runs ?? []) run.child.kill('SIGKILL')
  twin?.child.kill('SIGKILL')
  await db?.drop()
})

it('a second process under a running INSTANCE_ID is refused; restarts under it start', async () => {
  instance = await startInstance(`twin-${process.pid}`, env)
  const id = `twin-${process.pid}`
  const client = await TestClient.connect(instance.server.wsUrl(id))
  await client.waitFor((f) => f.type === 'connected')

  // Before: the twin started, and a socket through it took the session from the first process mid-turn.
  const twinStart = startServerProcess({ INSTANCE_ID: instance.id, ...env })
  twinStart.catch(() => {})
  const exited = await twinStart.then(async (server) => { twin = server; return await Promise.race([server.exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 3_000))]) }, (err: Error) => err.message)
  expect(exited).toMatch(/Could not start: cluster mode: another running process uses INSTANCE_ID=twin-\d+.*\(check INSTANCE_ID\)/)
  client.send({ type: 'ping' })
  await client.waitFor((f) => f.type === 'pong')
  expect(client.open).toBe(true)
  await client.close()

  // Killed: the claim lapses within three heartbeats and the restart takes it.
  instance.server.child.kill('SIGKILL')
  await instance.server.exited
  await restartInstance(instance, env)
}, 60_000)
