/** Protocol v1 end to end: a real ws client against a listening server with the offline model and the memory store. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { eventually, joinDeltas, startApp, TestClient, type Frame, type RunningApp } from '../support/app.js'

let server: RunningApp
const ids: string[] = []
const newId = () => { const id = `t-${Math.random().toString(36).slice(2, 10)}`; ids.push(id); return id }

beforeAll(async () => {
  server = await startApp({ env: { OFFLINE_TOKEN_DELAY_MS: '2', DISCONNECT_GRACE_MS: '50', MAX_MESSAGE_BYTES: '4096', MAX_MESSAGE_CHARS: '500' } })
})
afterAll(async () => { await server.close() })

async function storedSeqs (id: string): Promise<number[]> {
  const res = await server.app.inject({ url: `/api/session/${id}/events?limit=1000` })
  return (res.json().events as Frame[]).map((e) => e.seq)
}

describe('a turn over the socket', () => {
  it('sends session, the acked user_message, deltas and one assistant_message whose content is the deltas joined', async () => {
    const id = newId()
    const client = await TestClient.connect(server.wsUrl(id))
    const first = await client.waitFor(() => true)
    expect(first).toMatchObject({ type: 'session', sessionId: id, resumed: false, lastSeq: 0, model: { provider: 'offline', offline: true } })
    expect(first.tools).toEqual(expect.arrayContaining(['get_system_metrics', 'fetch_user_profile']))
    const connected = await client.waitFor((f) => f.type === 'connected')
    expect(connected.seq).toBe(1)

    client.send({ type: 'user_message', content: 'Hello there, who are you?' })
    const done = await client.waitTurnEnd()
    const user = client.ofType('user_message')[0]
    expect(user).toMatchObject({ seq: 2, content: 'Hello there, who are you?' })
    expect(typeof user.ts).toBe('string')
    const deltas = client.frames.filter((f) => f.type === 'delta')
    expect(deltas.length).toBeGreaterThanOrEqual(2)
    expect(deltas.map((d) => d.index)).toEqual(deltas.map((_, i) => i))
    expect(client.frames.indexOf(user)).toBeLessThan(client.frames.indexOf(deltas[0]))
    expect(done).toMatchObject({ turnId: user.turnId, finishReason: 'stop', seq: 3 })
    expect(done.content).toBe(joinDeltas(client.frames, user.turnId))
    expect(done.content).toMatch(/offline/i)
    expect(client.ofType('assistant_message')).toHaveLength(1)

    await eventually(async () => (await storedSeqs(id)).length === 3)
    expect(await storedSeqs(id)).toEqual([1, 2, 3])
    await client.close()
  })

  it('runs get_system_metrics for a CPU question and answers with real numbers', async () => {
    const client = await TestClient.connect(server.wsUrl(newId()))
    client.send({ type: 'user_message', content: 'what is the CPU load?' })
    const done = await client.waitTurnEnd()
    const call = client.ofType('tool_call')[0]
    const result = client.ofType('tool_result')[0]
    expect(call).toMatchObject({ name: 'get_system_metrics', turnId: done.turnId })
    expect(result).toMatchObject({ name: 'get_system_metrics', callId: call.callId, ok: true })
    expect(result.seq).toBe(call.seq + 1)
    expect(typeof result.result.cpu.loadPercent).toBe('number')
    expect(result.result.memory.totalBytes).toBeGreaterThan(0)
    expect(done.content).toMatch(/\d/)
    expect(done.seq).toBeGreaterThan(result.seq)
    await client.close()
  })

  it('handles a socket\'s frames in order: a cancel sent right behind a message cancels its turn, a ping behind both is answered after', async () => {
    const slow = await startApp({ env: { OFFLINE_TOKEN_DELAY_MS: '40' } })
    try {
      for (let round = 0; round < 3; round++) {
        const client = await TestClient.connect(slow.wsUrl(newId()))
        await client.waitFor((f) => f.type === 'connected')
        // One write each, back to back: before, the cancel overtook the message (which awaits its rate limit) → not_running.
        client.send({ type: 'user_message', content: 'a long answer please' })
        client.send({ type: 'cancel' })
        client.send({ type: 'ping' })
        const end = await client.waitTurnEnd()
        expect(end.finishReason).toBe('cancelled')
        expect(client.ofType('error')).toEqual([])
        expect(client.ofType('user_message')).toHaveLength(1)
        await client.waitFor((f) => f.type === 'pong')
        await client.close()
      }
    } finally {
      await slow.close()
    }
  })

  it('answers ping with pong, refuses a second message while a turn runs, and cancel with nothing running', async () => {
    const slow = await startApp({ env: { OFFLINE_TOKEN_DELAY_MS: '40' } })
    try {
      const client = await TestClient.connect(slow.wsUrl(newId()))
      client.send({ type: 'ping' })
      await client.waitFor((f) => f.type === 'pong')
      client.send({ type: 'cancel' })
      expect(await client.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'not_running', retryable: false })
      client.send({ type: 'user_message', content: 'first message' })
      const user = await client.waitFor((f) => f.type === 'user_message')
      client.send({ type: 'user_message', content: 'second message' })
      const busy = await client.waitFor((f) => f.type === 'error' && f.code === 'busy')
      expect(busy).toMatchObject({ retryable: true, turnId: user.turnId })
      expect(busy.seq).toBeUndefined()
      client.send({ type: 'cancel', turnId: 'not-this-one' })
      await client.waitFor((f) => f.type === 'error' && f.code === 'not_running' && /not-this-one/.test(f.message))
      await client.waitFor((f) => f.type === 'delta')
      client.send({ type: 'cancel', turnId: user.turnId })
      const end = await client.waitTurnEnd(user.turnId)
      expect(end.finishReason).toBe('cancelled')
      expect(end.content).toBe(joinDeltas(client.frames, user.turnId))
      expect(client.ofType('user_message')).toHaveLength(1)
      await client.close()
    } finally {
      await slow.close()
    }
  })
})

describe('bad input', () => {
  const cases: Array<[string, string | Buffer, RegExp]> = [
    ['not JSON', '{nope', /invalid JSON/],
    ['a JSON array', '[1,2]', /JSON object/],
    ['an unknown type', JSON.stringify({ type: 'dance' }), /unknown frame type "dance"/],
    ['a missing type', JSON.stringify({ content: 'hi' }), /unknown frame type/],
    ['empty content', JSON.stringify({ type: 'user_message', content: '' }), /content/],
    ['blank content', JSON.stringify({ type: 'user_message', content: '   ' }), /blank/],
    ['content of the wrong type', JSON.stringify({ type: 'user_message', content: 42 }), /content/],
    ['an unknown field', JSON.stringify({ type: 'ping', extra: 1 }), /extra/],
    ['a clientId too long', JSON.stringify({ type: 'user_message', content: 'x', clientId: 'c'.repeat(65) }), /clientId/],
    ['content over MAX_MESSAGE_CHARS', JSON.stringify({ type: 'user_message', content: 'x'.repeat(501) }), /limit is 500/],
    ['a binary frame', Buffer.from([1, 2, 3]), /binary/]
  ]
  it('a lone surrogate ("\\ud800": valid JSON, not text) in content or clientId becomes U+FFFD: acked, stored and recognised on resend alike', async () => {
    const id = newId()
    const client = await TestClient.connect(server.wsUrl(id))
    await client.waitFor((f) => f.type === 'connected')
    const raw = '{"type":"user_message","content":"hi \\ud800 there \\ud83d\\ude00","clientId":"c\\udc00"}'
    client.ws.send(raw)
    const user = await client.waitFor((f) => f.type === 'user_message')
    expect(user).toMatchObject({ content: 'hi \uFFFD there \ud83d\ude00', clientId: 'c\uFFFD' })
    await client.waitTurnEnd(user.turnId)
    client.ws.send(raw) // the same bytes again: the same message, not a second turn
    const again = await client.waitFor((f) => f.type === 'user_message' && f !== user)
    expect(again.seq).toBe(user.seq)
    const stored = (await server.app.inject({ url: `/api/session/${id}/events` })).json().events
    expect(stored.filter((e: { type: string }) => e.type === 'user_message')).toEqual([expect.objectContaining({ content: 'hi \uFFFD there \ud83d\ude00', clientId: 'c\uFFFD' })])
    await client.close()
  })

  it.each(cases)('%s → error bad_request naming the problem; the socket still works', async (_name, raw, pattern) => {
    const client = await TestClient.connect(server.wsUrl(newId()))
    await client.waitFor((f) => f.type === 'connected')
    client.ws.send(raw)
    const err = await client.waitFor((f) => f.type === 'error')
    expect(err.code).toBe('bad_request')
    expect(err.message).toMatch(pattern)
    expect(err.seq).toBeUndefined()
    client.send({ type: 'user_message', content: 'still there?' })
    const done = await client.waitTurnEnd()
    expect(done.finishReason).toBe('stop')
    await client.close()
  })

  it('closes a frame over MAX_MESSAGE_BYTES with 1009', async () => {
    const client = await TestClient.connect(server.wsUrl(newId()))
    client.send({ type: 'user_message', content: 'x'.repeat(5000) })
    expect((await client.closed).code).toBe(1009)
  })

  it.each([['bad%20id'], ['a'.repeat(65)], ['semi;colon']])('refuses the session id %s with HTTP 400 before the upgrade', async (id) => {
    await expect(TestClient.connect(server.wsUrl(id))).rejects.toThrow('HTTP 400')
  })

  it.each([['-1'], ['abc'], ['1.5']])('refuses after=%s with HTTP 400', async (after) => {
    await expect(TestClient.connect(`${server.wsUrl(newId())}?after=${after}`)).rejects.toThrow('HTTP 400')
  })

  it('closes a socket from a foreign origin with 1008 before any session work', async () => {
    const id = newId()
    const client = await TestClient.connect(server.wsUrl(id), { origin: 'https://evil.example' })
    expect((await client.closed).code).toBe(1008)
    expect(client.frames).toHaveLength(0)
    expect((await server.app.inject({ url: `/api/session/${id}` })).statusCode).toBe(404)
    const local = await TestClient.connect(server.wsUrl(newId()), { origin: server.baseUrl })
    expect((await local.waitFor(() => true)).type).toBe('session')
    await local.close()
  })
})

describe('resume and summary', () => {
  it('replays stored events after N, in order, without duplicates', async () => {
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    a.send({ type: 'user_message', content: 'one' })
    await a.waitTurnEnd()
    const lastSeen = a.ofType('user_message')[0].seq
    await a.close()
    const b = await TestClient.connect(server.wsUrl(id, lastSeen))
    const session = await b.waitFor((f) => f.type === 'session')
    expect(session.resumed).toBe(true)
    const own = await b.waitFor((f) => f.type === 'connected' && f.seq > session.lastSeq)
    const replayed = b.frames.filter((f) => typeof f.seq === 'number' && f.seq <= session.lastSeq)
    expect(replayed.map((f) => f.seq)).toEqual(Array.from({ length: session.lastSeq - lastSeen }, (_, i) => lastSeen + 1 + i))
    expect(replayed.map((f) => f.type)).toEqual(['assistant_message', 'disconnected'])
    expect(own.seq).toBe(session.lastSeq + 1)
    await b.close()
  })

  it('says reset and replays from the start when after is beyond the last seq', async () => {
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    await a.waitFor((f) => f.type === 'connected')
    const b = await TestClient.connect(server.wsUrl(id, 999))
    const session = await b.waitFor((f) => f.type === 'session')
    expect(session).toMatchObject({ resumed: false, reset: true, lastSeq: 1 })
    const replay = await b.waitFor((f) => f.type === 'connected')
    expect(replay.seq).toBe(1)
    await Promise.all([a.close(), b.close()])
  })

  it('ends the session after the grace and writes a summary with a duration', async () => {
    const id = newId()
    const client = await TestClient.connect(server.wsUrl(id))
    client.send({ type: 'user_message', content: 'Tell me about the weather in Paris' })
    await client.waitTurnEnd()
    await client.close()
    const record = await eventually(async () => {
      const body = (await server.app.inject({ url: `/api/session/${id}` })).json()
      return body.summaryStatus === 'ready' ? body : null
    })
    expect(record).toMatchObject({ id, status: 'ended', summaryStatus: 'ready', messageCount: 2 })
    expect(record.summary).toMatch(/weather in Paris/)
    expect(record.durationMs).toBeGreaterThan(0)
    expect(Date.parse(record.endedAt)).toBeGreaterThanOrEqual(Date.parse(record.startedAt))
  })

  it('keeps the session alive through a reload within the grace', async () => {
    const patient = await startApp({ env: { DISCONNECT_GRACE_MS: '5000' } })
    try {
      const id = newId()
      const a = await TestClient.connect(patient.wsUrl(id))
      await a.waitFor((f) => f.type === 'connected')
      await a.close()
      const b = await TestClient.connect(patient.wsUrl(id, 0))
      await b.waitFor((f) => f.type === 'connected' && f.seq === 3)
      const record = await eventually(async () => {
        const res = await patient.app.inject({ url: `/api/session/${id}` })
        return res.statusCode === 200 && res.json().lastSeq === 3 ? res.json() : null
      })
      expect(record).toMatchObject({ status: 'active', endedAt: null, summaryStatus: 'none' })
      expect(b.ws.readyState).toBe(WebSocket.OPEN)
      await b.close()
    } finally {
      await patient.close()
    }
  })
})
