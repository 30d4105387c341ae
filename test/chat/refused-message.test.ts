/** A message the store refuses for good was never acknowledged: no replay, from memory or the store, ever shows it. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../src/store/memory.js'
import { startApp, storedEvents, TestClient, type RunningApp } from '../support/app.js'

/** Messages the store holds until the test lets them through, then refuses: the test orders what happens meanwhile. */
const held = new Map<string, { arrive: () => void; gate: Promise<void> }>()
function hold (content: string): { reached: Promise<void>; refuse: () => void } {
  let arrive!: () => void
  let refuse!: () => void
  const reached = new Promise<void>((resolve) => { arrive = resolve })
  held.set(content, { arrive, gate: new Promise<void>((resolve) => { refuse = resolve }) })
  return { reached, refuse }
}

let server: RunningApp
beforeAll(async () => {
  const store = createMemoryStore()
  const append = store.appendEvents.bind(store)
  // Refused for good (not a StoreError marked retryable): what a check constraint does on Postgres.
  store.appendEvents = async (batch) => {
    if (batch.some(({ event }) => event.type === 'user_message' && event.content === 'refuse me')) throw new Error('check_violation')
    // Refused when the test says so: resends or a cancel come in while the store still has it.
    const slow = batch.map(({ event }) => event.type === 'user_message' ? held.get(event.content) : undefined).find(Boolean)
    if (slow) {
      slow.arrive()
      await slow.gate
      throw new Error('check_violation')
    }
    await append(batch)
  }
  server = await startApp({ env: { OFFLINE_TOKEN_DELAY_MS: '1', DISCONNECT_GRACE_MS: '600000', WRITER_FLUSH_MS: '5' }, deps: { store } })
})
afterAll(async () => { await server.close() })

const brief = (frames: Array<Record<string, unknown>>) =>
  frames.filter((f) => typeof f.seq === 'number').map((f) => `${String(f.seq)}:${String(f.type)}${f.type === 'user_message' ? `:${String(f.content)}` : ''}`)

describe('a refused message', () => {
  it('is not replayed on a resume, which then matches the store; its clientId can be sent again and runs once', async () => {
    const id = 'refused-1'
    const a = await TestClient.connect(server.wsUrl(id))
    await a.waitFor((f) => f.type === 'connected')
    a.send({ type: 'user_message', content: 'refuse me', clientId: 'r-1' })
    const refusal = await a.waitFor((f) => f.type === 'error')
    expect(refusal).toMatchObject({ code: 'store_unavailable', retryable: false, message: 'storage refused the message; it was not run' })
    expect(a.ofType('error')).toHaveLength(1)
    await a.waitFor((f) => f.type === 'assistant_message')
    expect(brief(a.frames)).toEqual(['1:connected', '3:assistant_message'])

    // What the page does on the gap: resume from the last seq it saw. Memory must not offer the refused message.
    const b = await TestClient.connect(server.wsUrl(id, 1))
    await b.waitFor((f) => f.type === 'connected')
    expect(brief(b.frames)).toEqual(['3:assistant_message', '4:connected'])
    const stored = async () => (await storedEvents(server, id)).map((e) => `${e.seq}:${e.type}${e.type === 'user_message' ? `:${e.content}` : ''}`)
    await expect.poll(stored).toEqual(['1:connected', '3:assistant_message', '4:connected'])

    a.send({ type: 'user_message', content: 'second try', clientId: 'r-1' })
    await a.waitFor((f) => f.type === 'assistant_message' && (f.seq as number) > 4)
    const c = await TestClient.connect(server.wsUrl(id, 0))
    await c.waitFor((f) => f.type === 'connected' && (f.seq as number) > 6)
    expect(c.ofType('user_message').map((f) => `${String(f.seq)}:${String(f.clientId)}:${String(f.content)}`)).toEqual(['5:r-1:second try'])
    await Promise.all([a.close(), b.close(), c.close()])
  })

  it('is refused to every socket that resent it while it waited for the store, not only to the first sender', async () => {
    const id = 'refused-2'
    const a = await TestClient.connect(server.wsUrl(id))
    const b = await TestClient.connect(server.wsUrl(id))
    await a.waitFor((f) => f.type === 'connected')
    await b.waitFor((f) => f.type === 'connected')
    const store = hold('refuse me slowly')
    a.send({ type: 'user_message', content: 'refuse me slowly', clientId: 'slow-1' })
    await store.reached
    // b resends while the store still has it; b's pong says the resend was handled (a socket's frames go in order).
    b.send({ type: 'user_message', content: 'refuse me slowly', clientId: 'slow-1' })
    b.send({ type: 'ping' })
    await b.waitFor((f) => f.type === 'pong')
    expect(b.ofType('error')).toEqual([])
    store.refuse()
    for (const c of [a, b]) {
      const err = await c.waitFor((f) => f.type === 'error')
      expect(err).toMatchObject({ code: 'store_unavailable', retryable: false, message: 'storage refused the message; it was not run' })
      expect(c.ofType('user_message')).toEqual([])
      expect(c.ofType('error')).toHaveLength(1)
    }
    await Promise.all([a.close(), b.close()])
  })

  it('tells the sender of a refusal that comes after it cancelled the turn (cancelled while being stored)', async () => {
    const a = await TestClient.connect(server.wsUrl('refused-3'))
    await a.waitFor((f) => f.type === 'connected')
    const store = hold('refuse me later')
    a.send({ type: 'user_message', content: 'refuse me later', clientId: 'slow-2' })
    a.send({ type: 'cancel' })
    // The pong says the cancel was handled; only then does the store answer.
    a.send({ type: 'ping' })
    await a.waitFor((f) => f.type === 'pong')
    await store.reached
    expect(a.ofType('error')).toEqual([])
    store.refuse()
    const end = await a.waitFor((f) => f.type === 'assistant_message')
    expect(end.finishReason).toBe('cancelled')
    const err = await a.waitFor((f) => f.type === 'error')
    expect(err).toMatchObject({ code: 'store_unavailable', retryable: false, message: 'storage refused the message; it was not run', turnId: end.turnId })
    expect(a.ofType('error')).toHaveLength(1)
    expect(a.ofType('user_message')).toEqual([])
    await a.close()
  })
})
