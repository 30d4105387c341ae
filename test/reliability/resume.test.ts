/** Resume mid-turn with ?after=N: missed stored events, then the running turn's deltas from 0, then live; fan-out order; reset. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startApp, type Frame, type RunningApp, TestClient } from '../support/app.js'
import { deltaText, flushedEvents, isDense } from '../support/reliability.js'

let server: RunningApp
let n = 0
const newId = () => `resume-${process.pid}-${n++}`

beforeAll(async () => {
  // Slow enough tokens that a turn is still running while a socket drops and comes back; no session ends mid-test.
  server = await startApp({ env: { OFFLINE_TOKEN_DELAY_MS: '15', DISCONNECT_GRACE_MS: '600000' } })
})
afterAll(async () => { await server.close() })

const maxSeq = (frames: Frame[]) => Math.max(0, ...frames.filter((f) => typeof f.seq === 'number').map((f) => f.seq))

/** Splits a resumed connection's frames into: session frame, replayed stored events, replayed deltas, own connected, live. */
function splitResume (frames: Frame[]) {
  const session = frames[0]
  expect(session.type).toBe('session')
  const ownAt = frames.findIndex((f) => f.type === 'connected' && f.seq > session.lastSeq)
  expect(ownAt).toBeGreaterThan(0)
  const replay = frames.slice(1, ownAt)
  // The running turn's streamed frames: its reasoning (the offline model reasons first), then its deltas.
  const firstStreamed = replay.findIndex((f) => f.type === 'delta' || f.type === 'reasoning')
  const stored = firstStreamed === -1 ? replay : replay.slice(0, firstStreamed)
  const streamed = firstStreamed === -1 ? [] : replay.slice(firstStreamed)
  const reasoning = streamed.filter((f) => f.type === 'reasoning')
  const deltas = streamed.filter((f) => f.type === 'delta')
  expect(streamed).toEqual([...reasoning, ...deltas])
  return { session, stored, reasoning, deltas, own: frames[ownAt], live: frames.slice(ownAt + 1) }
}

describe('resume mid-turn', () => {
  it('replays the missed stored events, then the running turn from index 0, then its own connected, then live frames', async () => {
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    a.send({ type: 'user_message', content: 'tell me a long story about resumable streams' })
    const user = await a.waitFor((f) => f.type === 'user_message')
    await a.waitFor((f) => f.type === 'delta' && f.index === 4)
    const seenByA = maxSeq(a.frames)
    await a.terminate()
    // The server records A's departure; the turn keeps going meanwhile.
    await flushedEventsWhen(id, (events) => events.some((e) => e.type === 'disconnected'))
    const b = await TestClient.connect(server.wsUrl(id, seenByA))
    const end = await b.waitTurnEnd(user.turnId)

    const { session, stored, reasoning, deltas, own, live } = splitResume(b.frames)
    expect(session).toMatchObject({ resumed: true, runningTurnId: user.turnId })
    // The turn's reasoning, whole, again from index 0.
    expect(reasoning.map((r) => r.index)).toEqual(reasoning.map((_, i) => i))
    expect(reasoning.map((r) => r.text).join('')).toBe(end.reasoning)
    // Exactly the stored events A missed, in order, no duplicates: A's own disconnect.
    expect(stored.map((f) => f.seq)).toEqual(Array.from({ length: session.lastSeq - seenByA }, (_, i) => seenByA + 1 + i))
    expect(stored.map((f) => f.type)).toEqual(['disconnected'])
    expect(deltas.length).toBeGreaterThanOrEqual(5)
    expect(deltas.map((d) => d.index)).toEqual(deltas.map((_, i) => i))
    expect(deltas.every((d) => d.turnId === user.turnId)).toBe(true)
    // The copies B got again are the same text A got the first time.
    for (const d of a.ofType('delta')) expect(deltas[d.index]?.text).toBe(d.text)
    expect(own.seq).toBe(session.lastSeq + 1)
    // Live deltas continue exactly where the replay stopped.
    const liveDeltas = live.filter((f) => f.type === 'delta')
    expect(liveDeltas.map((d) => d.index)).toEqual(liveDeltas.map((_, i) => deltas.length + i))
    expect(end.finishReason).toBe('stop')
    expect(deltaText(b.frames, user.turnId)).toBe(end.content)
    expect(b.ofType('assistant_message')).toHaveLength(1)

    const log = await flushedEvents(server, id)
    expect(isDense(log)).toBe(true)
    expect(log.map((e) => e.type)).toEqual(['connected', 'user_message', 'disconnected', 'connected', 'assistant_message'])
    // Between A and B, every stored event was seen exactly once.
    const seen = [...a.stored(), ...b.stored()].map((f) => f.seq)
    expect(seen).toEqual(log.map((e) => e.seq))
    await b.close()
  })

  it('sends every socket of a session the same frames in the same order, and a joiner with after catches up to the same', async () => {
    const id = newId()
    const sockets = [await TestClient.connect(server.wsUrl(id))]
    sockets.push(await TestClient.connect(server.wsUrl(id)), await TestClient.connect(server.wsUrl(id)))
    const lastJoin = await sockets[0].waitCount(3, (f) => f.type === 'connected')
    const joinSeq = lastJoin[2].seq
    sockets[1].send({ type: 'user_message', content: 'fan this out please', clientId: 'fan-1' })
    const user = await sockets[0].waitFor((f) => f.type === 'user_message')
    await sockets[2].waitFor((f) => f.type === 'delta' && f.index === 3)
    const late = await TestClient.connect(server.wsUrl(id, 0))
    const ends = await Promise.all([...sockets, late].map((s) => s.waitTurnEnd(user.turnId)))
    expect(new Set(ends.map((e) => e.seq)).size).toBe(1)

    // From the third connected on, the three sockets saw identical streams (stored events and deltas).
    const tail = (c: TestClient) => {
      const at = c.frames.findIndex((f) => f.type === 'connected' && f.seq === joinSeq)
      return JSON.stringify(c.frames.slice(at).filter((f) => f.type !== 'session'))
    }
    expect(tail(sockets[1])).toBe(tail(sockets[0]))
    expect(tail(sockets[2])).toBe(tail(sockets[0]))
    // The late joiner: the whole log, the turn's deltas from 0, then the same live frames as everyone.
    const lateParts = splitResume(late.frames)
    expect(lateParts.stored.map((f) => f.seq)).toEqual(Array.from({ length: lateParts.session.lastSeq }, (_, i) => i + 1))
    expect(deltaText(late.frames, user.turnId)).toBe(ends[0].content)
    const others = sockets[0].frames
    const fromOwn = others.findIndex((f) => f.type === 'connected' && f.seq === lateParts.own.seq)
    expect(JSON.stringify(lateParts.live)).toBe(JSON.stringify(others.slice(fromOwn + 1)))
    for (const s of [...sockets, late]) expect(deltaText(s.frames, user.turnId)).toBe(ends[0].content)
    await Promise.all([...sockets, late].map((s) => s.close()))
  })

  it('after beyond the last stored seq → reset: true, the whole log from 1, then the running turn from 0', async () => {
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    a.send({ type: 'user_message', content: 'something to resume after a crash' })
    const user = await a.waitFor((f) => f.type === 'user_message')
    await a.waitFor((f) => f.type === 'delta' && f.index === 2)
    const b = await TestClient.connect(server.wsUrl(id, 10_000))
    const end = await b.waitTurnEnd(user.turnId)
    const { session, stored, deltas } = splitResume(b.frames)
    expect(session).toMatchObject({ resumed: false, reset: true, lastSeq: 2, runningTurnId: user.turnId })
    expect(stored.map((f) => [f.seq, f.type])).toEqual([[1, 'connected'], [2, 'user_message']])
    expect(deltas[0]).toMatchObject({ index: 0, turnId: user.turnId })
    expect(deltaText(b.frames, user.turnId)).toBe(end.content)
    await Promise.all([a.close(), b.close()])
  })

  it('a turn that ended while nobody was attached is resumed from the stored events alone', async () => {
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    a.send({ type: 'user_message', content: 'finish this without me' })
    const user = await a.waitFor((f) => f.type === 'user_message')
    await a.waitFor((f) => f.type === 'delta' && f.index === 1)
    const seen = maxSeq(a.frames)
    await a.close()
    const log = await flushedEventsWhen(id, (events) => events.some((e) => e.type === 'assistant_message'))
    const b = await TestClient.connect(server.wsUrl(id, seen))
    const { session, stored, deltas } = splitResume(await b.until((fs) => (fs.some((f) => f.type === 'connected' && f.seq > (fs[0]?.lastSeq ?? Infinity)) ? fs : undefined)))
    expect(session.runningTurnId).toBeNull()
    expect(deltas).toHaveLength(0)
    expect(stored.map((f) => f.type)).toEqual(['disconnected', 'assistant_message'])
    const stored0 = log.find((e) => e.type === 'assistant_message')!
    expect(stored[1]).toMatchObject({ turnId: user.turnId, finishReason: 'stop', content: stored0.content })
    // What A saw before leaving is a prefix of the final answer.
    expect(stored0.content.startsWith(deltaText(a.frames, user.turnId))).toBe(true)
    await b.close()
  })
})

async function flushedEventsWhen (id: string, ok: (events: Frame[]) => boolean): Promise<Frame[]> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const events = await flushedEvents(server, id)
    if (ok(events)) return events
    if (Date.now() > deadline) throw new Error(`log never matched: ${JSON.stringify(events.map((e) => e.type))}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
