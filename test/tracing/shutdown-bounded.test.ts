/**
 * Tracing shutdown is bounded: with a collector that takes the connection and never answers, closing the app (which
 * exports the last spans) returns within a few seconds. Regression for b6bc582 (a dead collector held shutdown ~10 s).
 */
import { once } from 'node:events'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { startApp, TestClient } from '../support/app.js'

/** A TCP server that accepts every connection, reads what it is sent, and never answers. */
async function startSilentCollector (): Promise<{ url: string; connections: () => number; bytes: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  let connections = 0
  let bytes = 0
  const server = createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('data', (d: Buffer) => { bytes += d.length })
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    bytes: () => bytes,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

describe('tracing shutdown with a collector that never answers', () => {
  it('app.close() resolves within 3 s with spans pending', { timeout: 15_000 }, async () => {
    const collector = await startSilentCollector()
    try {
      const server = await startApp({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: 'rtb-shutdown-test' } })
      const client = await TestClient.connect(server.wsUrl(`otel-down-${process.pid}`))
      await client.waitFor((f) => f.type === 'connected')
      client.send({ type: 'user_message', content: 'hello' })
      expect((await client.waitTurnEnd()).finishReason).toBe('stop')
      await client.close()
      // The turn's spans wait in the batch processor (its first scheduled export is seconds away): nothing sent yet.
      expect(collector.connections()).toBe(0)

      const started = performance.now()
      await server.close()
      const tookMs = performance.now() - started
      // Shutdown did try to export them: the collector got a connection and a request it never answered.
      expect(collector.connections()).toBeGreaterThanOrEqual(1)
      expect(collector.bytes()).toBeGreaterThan(0)
      expect(tookMs).toBeLessThan(3_000)
    } finally {
      await collector.close()
    }
  })
})
