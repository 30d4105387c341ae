/** Socket and turn lines carry sessionId, connectionId, turnId, principal and client address, and never a token. */
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { startApp, TestClient } from '../support/app.js'
import { authEnv, connectAs, newUser } from '../support/auth.js'

type Line = Record<string, unknown> & { msg: string }

function capture (): { lines: Line[]; raw: string[]; stream: Writable } {
  const lines: Line[] = []
  const raw: string[] = []
  const stream = new Writable({
    write (chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) { raw.push(l); lines.push(JSON.parse(l)) }
      done()
    }
  })
  return { lines, raw, stream }
}

describe('log context', () => {
  it('puts sessionId, connectionId, principal and client on every socket line, turnId on turn lines, and no token anywhere', async () => {
    const { lines, raw, stream } = capture()
    const server = await startApp({ env: authEnv({ LOG_LEVEL: 'info', DISCONNECT_GRACE_MS: '0' }), logger: { level: 'info', stream } })
    const user = await newUser('logs')
    try {
      const client = await connectAs(server, user, 'logs-1')
      await client.waitFor((f) => f.type === 'connected')
      client.send({ type: 'user_message', content: 'How busy is the server CPU?' })
      const done = await client.waitTurnEnd()
      await client.close()
      // A browser-style socket: the token in the query string.
      const browser = await TestClient.connect(`${server.wsUrl('logs-1')}?access_token=${user.token}`)
      await browser.waitFor((f) => f.type === 'connected')
      await browser.close()
      await server.close()

      // Lines about a socket or a turn (the summary worker's lines are about the ended session, not a socket).
      const socketLines = lines.filter((l) => l.sessionId === 'logs-1' && l.component !== 'summary-worker')
      expect(socketLines.map((l) => l.msg)).toEqual(expect.arrayContaining(['socket connected', 'turn done', 'socket disconnected']))
      for (const l of socketLines) {
        expect(l, l.msg).toMatchObject({ sessionId: 'logs-1', connectionId: expect.any(String), principal: user.sub, client: '127.0.0.1' })
      }
      const turnDone = socketLines.find((l) => l.msg === 'turn done')!
      expect(turnDone).toMatchObject({ turnId: done.turnId, finishReason: 'stop', connectionId: socketLines[0].connectionId })
      expect(new Set(socketLines.map((l) => l.connectionId)).size).toBe(2)
      for (const l of raw) expect(l).not.toContain(user.token)
    } finally {
      if (server.app.server.listening) await server.close()
    }
  })

  it('tool call lines (debug) carry the turn\'s context too: connectionId, turnId, principal, client', async () => {
    const { lines, stream } = capture()
    const server = await startApp({ env: authEnv({ LOG_LEVEL: 'debug' }), logger: { level: 'debug', stream } })
    const user = await newUser('logs-tools')
    try {
      const client = await connectAs(server, user, 'logs-2')
      await client.waitFor((f) => f.type === 'connected')
      client.send({ type: 'user_message', content: 'How busy is the server CPU?' })
      const done = await client.waitTurnEnd()
      const connectionId = client.ofType('connected')[0].connectionId
      await client.close()
      const toolLines = lines.filter((l) => l.msg === 'tool call' || l.msg === 'tool call done')
      expect(toolLines.map((l) => l.msg)).toEqual(['tool call', 'tool call done'])
      for (const l of toolLines) {
        expect(l, l.msg).toMatchObject({ sessionId: 'logs-2', connectionId, turnId: done.turnId, principal: user.sub, client: '127.0.0.1', tool: 'get_system_metrics' })
      }
    } finally {
      await server.close()
    }
  })
})
