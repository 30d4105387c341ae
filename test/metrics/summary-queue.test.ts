/** rtb_summary_jobs reads the summary queue from the store at scrape time: a session that ends shows as pending, then as done. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../src/store/memory.js'
import type { SessionRepository } from '../../src/store/types.js'
import { eventually, startApp, TestClient, type RunningApp } from '../support/app.js'
import { parseMetrics, sample } from '../support/prom.js'

let server: RunningApp
const store = createMemoryStore()
// The worker's claims wait for this gate, so the job is seen pending before any worker takes it.
let open!: () => void
const gate = new Promise<void>((resolve) => { open = resolve })
const gated: SessionRepository = Object.assign(Object.create(store) as SessionRepository, {
  claimSummaryJobs: async (opts: Parameters<SessionRepository['claimSummaryJobs']>[0]) => { await gate; return await store.claimSummaryJobs(opts) }
})

beforeAll(async () => { server = await startApp({ env: { DISCONNECT_GRACE_MS: '0' }, deps: { store: gated } }) })
afterAll(async () => { await server?.close() })

const queue = async (): Promise<Record<string, number | undefined>> => {
  const samples = parseMetrics((await server.app.inject({ url: '/metrics' })).body)
  return Object.fromEntries(['pending', 'running', 'failed'].map((status) => [status, sample(samples, 'rtb_summary_jobs', { status })]))
}

describe('rtb_summary_jobs', () => {
  it('shows an ended session\'s job pending across the store, and nothing once its summary is written', async () => {
    expect(await queue()).toEqual({ pending: 0, running: 0, failed: 0 })
    const client = await TestClient.connect(server.wsUrl('summary-queue-1'))
    await client.waitFor((f) => f.type === 'connected')
    await client.close()
    await eventually(async () => (await store.getSession('summary-queue-1'))?.summaryStatus === 'pending')
    expect(await queue()).toEqual({ pending: 1, running: 0, failed: 0 })

    open()
    server.app.services.worker.kick()
    await eventually(async () => (await store.getSession('summary-queue-1'))?.summaryStatus === 'ready')
    expect(await queue()).toEqual({ pending: 0, running: 0, failed: 0 })
  })
})
