/** A real process: /health/ready turns 503 at SIGTERM, while its sockets are still open; they then close 1012 and it exits 0. */
import { describe, expect, it } from 'vitest'
import { eventually, TestClient } from '../support/app.js'
import { startServerProcess, type ServerProcess } from '../support/server-process.js'

/** Resolves once the process has printed `text` (stdout or stderr). */
function printed (server: ServerProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!server.output().includes(text)) return
      server.child.stdout!.off('data', check)
      resolve()
    }
    server.child.stdout!.on('data', check)
    void server.exited.then(() => reject(new Error(`exited before printing "${text}":\n${server.output()}`)))
    check()
  })
}

describe('drain on SIGTERM', () => {
  it('answers /health/ready 503 before the sockets close, then closes them 1012 and exits 0', async () => {
    // The delay holds the close back after readiness turned, as a load balancer's grace would.
    const server = await startServerProcess({ SHUTDOWN_DELAY_MS: '1500' })
    try {
      await eventually(async () => (await fetch(`${server.address}/health/ready`)).status === 200)
      const client = await TestClient.connect(server.wsUrl('drain-1'))
      await client.waitFor((f) => f.type === 'connected')
      let closedAt: number | undefined
      void client.closed.then(() => { closedAt = Date.now() })

      const draining = printed(server, 'draining: /health/ready answers 503')
      server.child.kill('SIGTERM')
      await draining
      const ready = await fetch(`${server.address}/health/ready`)
      expect(ready.status).toBe(503)
      expect(await ready.json()).toEqual({ status: 'draining' })
      expect((await fetch(`${server.address}/health/live`)).status).toBe(200)
      // Readiness turned while the socket was still open.
      expect(closedAt).toBeUndefined()
      expect(client.open).toBe(true)

      expect((await client.closed).code).toBe(1012)
      expect((await server.exited).code).toBe(0)
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL')
    }
  })
})
