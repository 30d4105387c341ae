/** GET /health shows every limit in force and how close the server is to each. */
import { afterAll, expect, it } from 'vitest'
import { startApp, TestClient, type RunningApp } from '../support/app.js'

let server: RunningApp | undefined
afterAll(async () => { await server?.close() })

it('counts sockets, live sessions, running and queued turns against their limits', async () => {
  server = await startApp({ env: { MAX_SOCKETS: '10', MAX_SOCKETS_PER_IP: '3', MAX_LIVE_SESSIONS: '7', MAX_CONCURRENT_TURNS: '1', MAX_QUEUED_TURNS: '4', OFFLINE_TOKEN_DELAY_MS: '20', DISCONNECT_GRACE_MS: '600000' } })
  const open = (ip: string, id: string) => TestClient.connect(server!.wsUrl(id), { localAddress: ip })
  const [a, b, c] = await Promise.all([open('127.0.0.30', 'health-a'), open('127.0.0.30', 'health-b'), open('127.0.0.31', 'health-c')])
  await Promise.all([a, b, c].map((x) => x.waitFor((f) => f.type === 'connected')))
  a.send({ type: 'user_message', content: 'tell me a long story' })
  await a.waitFor((f) => f.type === 'delta')
  b.send({ type: 'user_message', content: 'and me' })
  await b.waitFor((f) => f.type === 'queued')

  const res = await server.app.inject({ url: '/health' })
  expect(res.statusCode).toBe(200)
  expect(res.json().limits).toEqual({
    sockets: { used: 3, max: 10 },
    liveSessions: { used: 3, max: 7 },
    turns: { running: 1, max: 1, queued: 1, maxQueued: 4 },
    summaries: { running: 0, max: 2 },
    perAddress: { sockets: { used: 2, max: 3 }, newSessionsPerMin: 1_000_000, messagesPerMin: 1_000_000 },
    perUser: { sockets: { used: 0, max: 32 }, messagesPerMin: 60 },
    perSession: { sockets: 8, messagesPerMin: 30 },
    perConnection: { framesPerMin: 600 },
    http: { requestsPerMinPerAddress: 600 }
  })
  a.send({ type: 'cancel' })
  b.send({ type: 'cancel' })
  await Promise.all([a.waitTurnEnd(), b.waitTurnEnd()])
  expect((await server.app.inject({ url: '/health' })).json().limits.turns).toEqual({ running: 0, max: 1, queued: 0, maxQueued: 4 })
  await Promise.all([a, b, c].map((x) => x.close()))
})
