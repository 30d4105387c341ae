/**
 * rtb_ws_closes_total counts sockets refused by the socket caps: MAX_SOCKETS_PER_IP (too_many_sockets) and MAX_SOCKETS
 * (busy_server), each a close 1013. Regression for b6bc582 (refused before the close listener existed, never counted).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startApp, TestClient, type RunningApp } from '../support/app.js'
import { fate } from '../support/fate.js'
import { changes, parseMetrics, sample, type Samples } from '../support/prom.js'

let server: RunningApp
let n = 0
const held: TestClient[] = []
beforeAll(async () => {
  server = await startApp({ env: { MAX_SOCKETS: '3', MAX_SOCKETS_PER_IP: '1', DISCONNECT_GRACE_MS: '600000' } })
})
afterAll(async () => {
  await Promise.all(held.map((c) => c.close()))
  await server?.close()
})

async function scrape (): Promise<Samples> {
  const res = await server.app.inject({ url: '/metrics' })
  expect(res.statusCode).toBe(200)
  return parseMetrics(res.body)
}
const from = (localAddress: string) => TestClient.connect(server.wsUrl(`closes-${process.pid}-${n++}`), { localAddress })
async function hold (localAddress: string): Promise<void> {
  const c = await from(localAddress)
  held.push(c)
  expect(await fate(c)).toMatchObject({ joined: true })
}

describe('rtb_ws_closes_total for refused sockets', () => {
  it('moves {code="1013"} by exactly the sockets MAX_SOCKETS_PER_IP and MAX_SOCKETS refused, and nothing else', async () => {
    await hold('127.0.0.51')
    const start = await scrape()

    // Three refused by the per-address cap.
    for (let i = 0; i < 3; i++) {
      expect(await fate(await from('127.0.0.51'))).toEqual({ closed: 1013, frames: [expect.objectContaining({ type: 'error', code: 'too_many_sockets' })] })
    }
    const afterAddress = await scrape()
    expect(changes(start, afterAddress, 'rtb_ws_closes_total')).toEqual({ 'rtb_ws_closes_total{code="1013"}': 3 })
    expect(changes(start, afterAddress, 'rtb_errors_total')).toEqual({ 'rtb_errors_total{code="too_many_sockets"}': 3 })
    // Their places were given back at once (the open-sockets gauge follows as each TCP close completes).
    expect(server.app.services.serverSockets.held('')).toBe(1)

    // The server full (3 sockets): two refused by the server cap, from addresses under their own cap.
    await hold('127.0.0.52')
    await hold('127.0.0.53')
    const full = await scrape()
    for (const ip of ['127.0.0.54', '127.0.0.55']) {
      expect(await fate(await from(ip))).toEqual({ closed: 1013, frames: [expect.objectContaining({ type: 'error', code: 'busy_server' })] })
    }
    const afterServer = await scrape()
    expect(changes(full, afterServer, 'rtb_ws_closes_total')).toEqual({ 'rtb_ws_closes_total{code="1013"}': 2 })
    expect(changes(full, afterServer, 'rtb_errors_total')).toEqual({ 'rtb_errors_total{code="busy_server"}': 2 })
    expect(server.app.services.serverSockets.held('')).toBe(3)
    expect(sample(afterServer, 'rtb_ws_closes_total', { code: '1013' }) - sample(start, 'rtb_ws_closes_total', { code: '1013' })).toBe(5)
  })
})
