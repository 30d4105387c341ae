/** Fuzz against a live server: >10,000 hostile frames each get an error frame (or a documented close); the process and a neighbour session are untouched. */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ClientFrame } from '../../src/protocol.js'
import { startApp, type Frame, type RunningApp, TestClient } from '../support/app.js'
import { deltaText, flushedEvents, isDense } from '../support/reliability.js'

const MAX_BYTES = 16_384
const MAX_CHARS = 2_000
const SEED = Number(process.env.FUZZ_SEED ?? 0xf0220)

let server: RunningApp
const crashes: unknown[] = []
const onCrash = (err: unknown) => { crashes.push(err) }

beforeAll(async () => {
  process.on('unhandledRejection', onCrash)
  process.on('uncaughtException', onCrash)
  server = await startApp({
    env: {
      MAX_MESSAGE_BYTES: String(MAX_BYTES), MAX_MESSAGE_CHARS: String(MAX_CHARS), RATE_FRAMES_PER_MIN: '10000000', RATE_MESSAGES_PER_MIN: '100000',
      OFFLINE_TOKEN_DELAY_MS: '1', DISCONNECT_GRACE_MS: '600000'
    }
  })
})
afterAll(async () => {
  await server.close()
  process.off('unhandledRejection', onCrash)
  process.off('uncaughtException', onCrash)
})

interface Fuzz { data: string | Buffer; binary: boolean }
/** What the server must do with a frame: answer with one frame, close the socket, or (a valid user_message) nothing we send. */
type Expect = { answer: 'pong' | 'bad_request' | 'not_running' | 'not_pending' } | { close: 1009 | 1007 } | { skip: true }

const text = (data: string): Fuzz => ({ data, binary: false })
const ODD = ['\uD800', '\uDFFF', '\uDBFF\uDC00', '\u0000', '\u202E', '\u200F', '\u2066', '\uFEFF', '\uFFFF', '\uFFFE', '😀', 'e\u0301', '\n', '"', '\\', 'ت']
const VALID = [
  '{"type":"ping"}', '{"type":"cancel"}', '{"type":"cancel","turnId":"t-1"}',
  '{"type":"user_message","content":"hello"}', '{"type":"user_message","content":"hi","clientId":"c-1"}'
]
const odd = fc.array(fc.constantFrom(...ODD), { minLength: 1, maxLength: 12 }).map((xs) => xs.join(''))
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), odd, fc.string({ unit: 'binary', maxLength: 40 }), fc.constant(undefined))

function nest (depth: number, inner: string, shape: 'array' | 'object'): string {
  return shape === 'array' ? '['.repeat(depth) + inner + ']'.repeat(depth) : '{"a":'.repeat(depth) + inner + '}'.repeat(depth)
}

const fuzzFrame: fc.Arbitrary<Fuzz> = fc.oneof(
  // random bytes, as a binary frame
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => ({ data: Buffer.from(b), binary: true })) },
  // random text, including lone surrogates (sent as U+FFFD by the client's UTF-8 encoder)
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map(text) },
  // random JSON of any shape
  { weight: 4, arbitrary: fc.json({ maxDepth: 4 }).map(text) },
  // near-valid JSON: a valid frame with one character deleted, inserted, replaced, or cut short
  {
    weight: 6,
    arbitrary: fc.tuple(fc.constantFrom(...VALID), fc.nat(), fc.constantFrom('delete', 'insert', 'replace', 'truncate'), fc.constantFrom('"', '{', '}', ',', ':', '\\', ' ', 'x', '\u0000', '1'))
      .map(([v, at, op, ch]) => {
        const i = at % v.length
        return text(op === 'delete' ? v.slice(0, i) + v.slice(i + 1) : op === 'insert' ? v.slice(0, i) + ch + v.slice(i) : op === 'replace' ? v.slice(0, i) + ch + v.slice(i + 1) : v.slice(0, i))
      })
  },
  // the right keys with wrong types, unknown keys, unknown types
  {
    weight: 6,
    arbitrary: fc.record({
      type: fc.oneof(fc.constantFrom('user_message', 'cancel', 'ping', 'USER_MESSAGE', 'ping ', '__proto__', 'constructor'), anyValue),
      content: anyValue,
      clientId: anyValue,
      turnId: anyValue,
      [`x${'y'.repeat(3)}`]: anyValue
    }, { requiredKeys: [] }).map((o) => text(JSON.stringify(o) ?? 'undefined'))
  },
  // odd unicode in every field
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom('user_message', 'cancel', 'ping'), odd, odd).map(([type, a, b]) => text(JSON.stringify({ type, content: a, clientId: b, turnId: a })))
  },
  // deep nesting in the type, a field, or the whole frame
  {
    weight: 3,
    arbitrary: fc.tuple(fc.integer({ min: 1, max: 7_000 }), fc.constantFrom('array', 'object') as fc.Arbitrary<'array' | 'object'>, fc.constantFrom('type', 'content', 'clientId', 'extra', 'top'))
      .map(([depth, shape, where]) => {
        const deep = nest(depth, '1', shape)
        if (where === 'top') return text(deep)
        if (where === 'type') return text(`{"type":${deep}}`)
        return text(`{"type":"user_message","content":${where === 'content' ? deep : '"x"'}${where === 'content' ? '' : `,"${where}":${deep}`}}`)
      })
  },
  // huge strings around the char and byte limits, and long keys
  {
    weight: 2,
    arbitrary: fc.tuple(fc.integer({ min: MAX_CHARS - 5, max: MAX_BYTES + 200 }), fc.constantFrom('content', 'clientId', 'key', 'type'), fc.constantFrom('x', 'é', '😀', ' '))
      .map(([n, where, ch]) => {
        const big = ch.repeat(Math.ceil(n / ch.length)).slice(0, n)
        if (where === 'key') return text(`{"type":"ping",${JSON.stringify(big)}:1}`)
        if (where === 'type') return text(JSON.stringify({ type: big }))
        return text(JSON.stringify({ type: 'user_message', content: where === 'content' ? big : 'x', ...(where === 'clientId' ? { clientId: big } : {}) }))
      })
  },
  // invalid UTF-8 inside a text frame: a WebSocket protocol error (RFC 6455 §8.1)
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xff, 0xfe, 0x7b]), Buffer.from('{"type":"ping"\xc3}', 'latin1')).map((data) => ({ data, binary: false })) }
)

/** The server's contract, computed from the protocol schema. */
function expected (f: Fuzz): Expect {
  const bytes = typeof f.data === 'string' ? Buffer.from(f.data, 'utf8') : f.data
  if (bytes.length > MAX_BYTES) return { close: 1009 }
  if (f.binary) return { answer: 'bad_request' }
  const decoded = new TextDecoder('utf-8', { fatal: true })
  let s: string
  try { s = decoded.decode(bytes) } catch { return { close: 1007 } }
  let json: unknown
  try { json = JSON.parse(s) } catch { return { answer: 'bad_request' } }
  const parsed = ClientFrame.safeParse(json)
  if (!parsed.success) return { answer: 'bad_request' }
  const frame = parsed.data
  if (frame.type === 'ping') return { answer: 'pong' }
  if (frame.type === 'cancel') return { answer: 'not_running' }
  // Auth is off in this test: an auth frame is a bad request.
  if (frame.type === 'auth') return { answer: 'bad_request' }
  // Nothing waits for approval in this test: every answer is not_pending.
  if (frame.type === 'tool_approval') return { answer: 'not_pending' }
  if (frame.content.length > MAX_CHARS || frame.content.trim() === '') return { answer: 'bad_request' }
  return { skip: true }
}

describe('fuzzing the socket', () => {
  it('answers every hostile frame with an error (or a documented close), never crashes, and leaves a neighbour session alone', async () => {
    let fuzzing = true
    // The neighbour: a well-behaved client on another session, running turns the whole time.
    const neighbourId = `fuzz-neighbour-${process.pid}`
    const neighbour = await TestClient.connect(server.wsUrl(neighbourId))
    const neighbourTurns = (async () => {
      let turns = 0
      while (fuzzing || turns < 3) {
        neighbour.send({ type: 'user_message', content: `turn ${turns} while the fuzzer runs` })
        await neighbour.waitCount(++turns, (f) => f.type === 'assistant_message', { timeoutMs: 30_000 })
      }
      return turns
    })()
    neighbourTurns.catch(() => {}) // awaited below; a failure elsewhere must not leave it unhandled

    const fuzzId = `fuzz-${process.pid}`
    let socket = await TestClient.connect(server.wsUrl(fuzzId))
    await socket.waitFor((f) => f.type === 'connected')
    const counts = { sent: 0, answered: 0, closed: 0, skipped: 0 }
    let single = 0

    try {
      await fc.assert(fc.asyncProperty(fc.array(fuzzFrame, { minLength: 70, maxLength: 100 }), async (batch) => {
        const plan = batch.map((f) => ({ f, want: expected(f) }))
        counts.skipped += plan.filter((p) => 'skip' in p.want).length
        const inline = plan.filter((p) => 'answer' in p.want) as Array<{ f: Fuzz; want: { answer: string } }>
        if (!socket.open) {
          socket = await TestClient.connect(server.wsUrl(fuzzId))
          await socket.waitFor((f) => f.type === 'connected')
        }
        const from = socket.frames.length
        for (const { f } of inline) socket.ws.send(f.data, { binary: f.binary })
        counts.sent += inline.length
        const answers = await socket.waitCount(inline.length, (fr) => fr.type === 'error' || fr.type === 'pong', { from, timeoutMs: 20_000 })
        inline.forEach(({ want }, i) => {
          const got: Frame = answers[i]
          if (want.answer === 'pong') { expect(got.type).toBe('pong'); return }
          expect(got).toMatchObject({ type: 'error', code: want.answer, retryable: false })
          expect(got.seq).toBeUndefined()
          expect(got.message.length).toBeLessThan(600)
        })
        counts.answered += answers.length
        // Frames that must close the socket, each on a socket of its own.
        for (const { f, want } of plan) {
          if (!('close' in want)) continue
          const c = await TestClient.connect(server.wsUrl(`${fuzzId}-close-${single++}`))
          await c.waitFor((fr) => fr.type === 'connected')
          c.ws.send(f.data, { binary: f.binary })
          expect((await c.closed).code).toBe(want.close)
          expect(c.frames.filter((fr) => fr.type === 'error')).toEqual([])
          counts.sent++
          counts.closed++
        }
      }), { numRuns: 140, seed: SEED, endOnFailure: true })
    } finally {
      fuzzing = false
    }
    const turns = await neighbourTurns
    expect(counts.sent).toBeGreaterThanOrEqual(10_000)
    expect(counts.closed).toBeGreaterThan(0)
    expect(crashes).toEqual([])

    // The fuzzed socket is still usable, and its session's log holds nothing but its connections.
    expect(socket.open).toBe(true)
    socket.send({ type: 'ping' })
    await socket.waitFor((f) => f.type === 'pong', { from: socket.frames.length - 1 })
    const fuzzLog = await flushedEvents(server, fuzzId)
    expect(new Set(fuzzLog.map((e) => e.type))).toEqual(new Set(['connected', ...(fuzzLog.length > 1 ? ['disconnected'] : [])]))

    // The neighbour: every turn complete, text = deltas, log dense, nothing odd.
    const ends = neighbour.ofType('assistant_message')
    expect(ends).toHaveLength(turns)
    for (const end of ends) {
      expect(end.finishReason).toBe('stop')
      expect(deltaText(neighbour.frames, end.turnId)).toBe(end.content)
    }
    expect(neighbour.ofType('error')).toEqual([])
    const log = await flushedEvents(server, neighbourId)
    expect(isDense(log)).toBe(true)
    expect(log.filter((e) => e.type === 'user_message')).toHaveLength(turns)
    await Promise.all([socket.close(), neighbour.close()])
  }, 90_000)
})
