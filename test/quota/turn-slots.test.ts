/** createTurnSlots on its own: summaries take a model slot only when no turn waits, at most SUMMARY_CONCURRENCY. */
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
