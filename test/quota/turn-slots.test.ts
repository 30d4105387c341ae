/** createTurnSlots on its own: summaries take a model slot only when no turn waits, at most SUMMARY_CONCURRENCY. */
import { getEventListeners } from 'node:events'
import { describe, expect, it } from 'vitest'
import { createTurnSlots } from '../../src/quota/turn-slots.js'

const signal = () => new AbortController().signal

describe('createTurnSlots', () => {
  it('a summary waits behind queued turns and takes a slot once none waits; at most lowLimit summaries run', async () => {
    const slots = createTurnSlots({ limit: 2, maxQueued: 4, lowLimit: 1 })
    const t1 = slots.acquire({ key: 'u1', signal: signal() })
    const t2 = slots.acquire({ key: 'u2', signal: signal() })
    const t3 = slots.acquire({ key: 'u3', signal: signal() })
    if (t1.type !== 'waiting' || t2.type !== 'waiting' || t3.type !== 'waiting') throw new Error('expected tickets')
    expect(await t1.granted).toBe(true)
    const order: string[] = []
    const s1 = slots.acquireLow(signal()).then((release) => { order.push('s1'); return release })
    const s2 = slots.acquireLow(signal()).then((release) => { order.push('s2'); return release })
    void t3.granted.then(() => order.push('t3'))
    t1.release()
    await t3.granted
    expect(order).toEqual(['t3'])
    t2.release()
    const r1 = await s1
    expect(order).toEqual(['t3', 's1'])
    expect(slots.stats()).toMatchObject({ running: 1, lowRunning: 1, queued: 0 })
    // lowLimit 1: s2 waits although a slot is free after t3.
    t3.release()
    expect(slots.stats()).toMatchObject({ running: 0, lowRunning: 1 })
    r1()
    ;(await s2)()
    expect(order).toEqual(['t3', 's1', 's2'])
    expect(slots.stats()).toMatchObject({ running: 0, lowRunning: 0, queued: 0 })
  })

  it('an aborted wait leaves the queue (positions move up) and a summary wait rejects with the abort reason', async () => {
    const slots = createTurnSlots({ limit: 1, maxQueued: 2, lowLimit: 1 })
    const held = slots.acquire({ key: 'a', signal: signal() })
    const stop = new AbortController()
    const places: number[] = []
    const b = slots.acquire({ key: 'b', signal: stop.signal })
    const c = slots.acquire({ key: 'c', signal: signal(), onPosition: (p) => places.push(p) })
    expect(slots.acquire({ key: 'd', signal: signal() })).toMatchObject({ type: 'full' })
    stop.abort()
    if (b.type !== 'waiting' || c.type !== 'waiting' || held.type !== 'waiting') throw new Error('expected tickets')
    expect(await b.granted).toBe(false)
    expect(places).toEqual([2, 1])
    expect(slots.stats().queued).toBe(1)
    const low = new AbortController()
    const waiting = slots.acquireLow(low.signal)
    low.abort(new Error('stopped'))
    await expect(waiting).rejects.toThrow('stopped')
    held.release()
    expect(await c.granted).toBe(true)
    c.release()
    expect(slots.stats()).toMatchObject({ running: 0, queued: 0, lowRunning: 0 })
  })
})

describe('createTurnSlots: the fair queue', () => {
  /** A queued ticket with its places seen so far and whether it was granted yet. */
  function queued (slots: ReturnType<typeof createTurnSlots>, key: string, ac = new AbortController()) {
    const places: number[] = []
    const ticket = slots.acquire({ key, signal: ac.signal, onPosition: (p) => places.push(p) })
    if (ticket.type !== 'waiting') throw new Error('expected a ticket')
    const t = { ...ticket, places, ac, got: undefined as boolean | undefined }
    void ticket.granted.then((g) => { t.got = g })
    return t
  }
  const settle = () => new Promise((resolve) => setImmediate(resolve))

  it('serves keys round-robin: each key\'s first waiter, then each key\'s second; places follow as they move', async () => {
    const slots = createTurnSlots({ limit: 1, maxQueued: 10, lowLimit: 1 })
    const holder = queued(slots, 'x')
    const [a1, a2, a3, b1, c1] = ['a', 'a', 'a', 'b', 'c'].map((k) => queued(slots, k))
    expect([a1, b1, c1, a2, a3].map((t) => t.places.at(-1))).toEqual([1, 2, 3, 4, 5])
    expect(slots.stats()).toEqual({ running: 1, limit: 1, queued: 5, maxQueued: 10, lowRunning: 0 })
    const served: string[] = []
    let current = holder
    for (const [name, next] of [['a1', a1], ['b1', b1], ['c1', c1], ['a2', a2], ['a3', a3]] as const) {
      current.release()
      await settle()
      expect(next.got).toBe(true)
      served.push(name)
      current = next
    }
    expect(served).toEqual(['a1', 'b1', 'c1', 'a2', 'a3'])
    // Each change of place was told, in order: a2 joined 2nd, moved back as b1 and c1 joined ahead of it
    // (their first turn comes before a's second), then forward as the queue was served.
    expect([a1.places, b1.places, c1.places, a2.places, a3.places]).toEqual([[1], [2, 1], [3, 2, 1], [2, 3, 4, 3, 2, 1], [3, 4, 5, 4, 3, 2, 1]])
    a3.release()
    expect(slots.stats()).toMatchObject({ running: 0, queued: 0 })
  })

  it('a waiter that leaves from the middle of its key\'s list leaves alone; the others keep their turn', async () => {
    const slots = createTurnSlots({ limit: 1, maxQueued: 10, lowLimit: 1 })
    const holder = queued(slots, 'x')
    const [a1, a2, a3] = ['a', 'a', 'a'].map((k) => queued(slots, k))
    a2.ac.abort()
    await settle()
    expect(a2.got).toBe(false)
    expect(slots.stats().queued).toBe(2)
    expect(a3.places).toEqual([3, 2])
    a1.ac.abort()
    await settle()
    expect(slots.stats().queued).toBe(1)
    holder.release()
    await settle()
    expect(a3.got).toBe(true)
    expect(getEventListeners(a2.ac.signal, 'abort')).toHaveLength(0)
  })

  it('release is idempotent: a slot given back twice frees one', async () => {
    const slots = createTurnSlots({ limit: 1, maxQueued: 10, lowLimit: 1 })
    const holder = queued(slots, 'x')
    const [b, c] = ['b', 'c'].map((k) => queued(slots, k))
    holder.release()
    holder.release()
    await settle()
    expect([b.got, c.got]).toEqual([true, undefined])
    expect(slots.stats()).toMatchObject({ running: 1, queued: 1 })
    c.release()
    c.release()
    expect(slots.stats()).toMatchObject({ running: 1, queued: 0 })
    b.release()
    expect(slots.stats()).toMatchObject({ running: 0, queued: 0 })
  })

  it('a turn aborted after it got its slot keeps it until released; its abort listener is gone', async () => {
    const slots = createTurnSlots({ limit: 1, maxQueued: 10, lowLimit: 1 })
    const holder = queued(slots, 'x')
    const next = queued(slots, 'y')
    holder.release()
    await settle()
    expect(next.got).toBe(true)
    expect(getEventListeners(next.ac.signal, 'abort')).toHaveLength(0)
    next.ac.abort()
    expect(slots.stats().running).toBe(1)
    next.release()
    expect(slots.stats().running).toBe(0)
  })

  it('an already aborted signal takes nothing, even with slots free', async () => {
    const slots = createTurnSlots({ limit: 2, maxQueued: 10, lowLimit: 1 })
    const ac = new AbortController()
    ac.abort()
    const t = slots.acquire({ key: 'a', signal: ac.signal })
    if (t.type !== 'waiting') throw new Error('expected a ticket')
    expect(await t.granted).toBe(false)
    expect(slots.stats()).toMatchObject({ running: 0, queued: 0 })
  })

  it('a running summary holds its slot against turns, which queue behind it', async () => {
    const slots = createTurnSlots({ limit: 1, maxQueued: 10, lowLimit: 1 })
    const low = await slots.acquireLow(signal())
    const turn = queued(slots, 'a')
    await settle()
    expect(turn.got).toBeUndefined()
    expect(slots.stats()).toMatchObject({ running: 0, lowRunning: 1, queued: 1 })
    low()
    low()
    await settle()
    expect(turn.got).toBe(true)
    expect(slots.stats()).toMatchObject({ running: 1, lowRunning: 0, queued: 0 })
  })

  it('a summary waits while every slot is taken by turns, even with no turn queued; its listener leaves once it runs', async () => {
    const slots = createTurnSlots({ limit: 1, maxQueued: 10, lowLimit: 2 })
    const turn = queued(slots, 'a')
    const ac = new AbortController()
    let ran = false
    const low = slots.acquireLow(ac.signal).then((release) => { ran = true; return release })
    await settle()
    expect(ran).toBe(false)
    turn.release()
    const release = await low
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0)
    release()
    expect(slots.stats().lowRunning).toBe(0)
  })

  it('no turn is granted past the limit while a summary holds a slot, even when the queue moves', async () => {
    const slots = createTurnSlots({ limit: 2, maxQueued: 10, lowLimit: 1 })
    const a = queued(slots, 'a')
    const low = await slots.acquireLow(signal())
    const [b, c] = ['b', 'c'].map((k) => queued(slots, k))
    c.ac.abort()
    await settle()
    expect([b.got, c.got]).toEqual([undefined, false])
    expect(slots.stats()).toMatchObject({ running: 1, lowRunning: 1, queued: 1 })
    a.release()
    await settle()
    expect(b.got).toBe(true)
    low()
  })

  it('no summary starts past the limit either, however many may run', async () => {
    const slots = createTurnSlots({ limit: 2, maxQueued: 10, lowLimit: 2 })
    const a = queued(slots, 'a')
    const first = await slots.acquireLow(signal())
    let second = false
    const next = slots.acquireLow(signal()).then((release) => { second = true; return release })
    await settle()
    expect(second).toBe(false)
    expect(slots.stats()).toMatchObject({ running: 1, lowRunning: 1 })
    a.release()
    ;(await next)()
    first()
    expect(slots.stats()).toMatchObject({ running: 0, lowRunning: 0 })
  })

  it('a summary wait that is aborted leaves no listener behind', async () => {
    const slots = createTurnSlots({ limit: 1, maxQueued: 10, lowLimit: 1 })
    const a = queued(slots, 'a')
    const ac = new AbortController()
    const waiting = slots.acquireLow(ac.signal)
    ac.abort(new Error('stop'))
    await expect(waiting).rejects.toThrow('stop')
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0)
    a.release()
    expect(slots.stats()).toMatchObject({ running: 0, lowRunning: 0 })
  })

  it('an already aborted summary wait rejects at once with the reason', async () => {
    const slots = createTurnSlots({ limit: 1, maxQueued: 10, lowLimit: 1 })
    await expect(slots.acquireLow(AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone')
    expect(slots.stats().lowRunning).toBe(0)
  })
})
