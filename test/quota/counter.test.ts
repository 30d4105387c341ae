/** createHeldCounter: what each key holds against the cap, and the busiest key. */
import { describe, expect, it } from 'vitest'
import { createHeldCounter } from '../../src/quota/counter.js'

describe('createHeldCounter', () => {
  it('takes up to the limit per key, refuses beyond it without taking, and frees on release', () => {
    const c = createHeldCounter(2)
    expect([c.acquire('a'), c.acquire('a'), c.acquire('a')]).toEqual([true, true, false])
    expect(c.held('a')).toBe(2)
    expect(c.acquire('b')).toBe(true)
    expect(c.held('b')).toBe(1)
    c.release('a')
    expect(c.held('a')).toBe(1)
    expect(c.acquire('a')).toBe(true)
    expect(c.acquire('a')).toBe(false)
  })

  it('a release of a key holding nothing stays at zero, and the next acquire counts from zero', () => {
    const c = createHeldCounter(1)
    c.release('ghost')
    expect([c.held('ghost'), c.busiest()]).toEqual([0, 0])
    expect(c.acquire('ghost')).toBe(true)
    for (let i = 0; i < 2; i++) c.release('ghost')
    expect([c.held('ghost'), c.acquire('ghost'), c.acquire('ghost')]).toEqual([0, true, false])
  })

  it('busiest is the most any one key holds now, 0 when none holds anything', () => {
    const c = createHeldCounter(5)
    expect(c.busiest()).toBe(0)
    c.acquire('a')
    for (let i = 0; i < 3; i++) c.acquire('b')
    c.acquire('c')
    c.acquire('c')
    expect(c.busiest()).toBe(3)
    c.release('b')
    c.release('b')
    expect(c.busiest()).toBe(2)
    for (const k of ['a', 'b', 'c', 'c']) c.release(k)
    expect(c.busiest()).toBe(0)
  })

  it('a limit of 0 refuses everything', () => {
    const c = createHeldCounter(0)
    expect(c.acquire('a')).toBe(false)
    expect(c.held('a')).toBe(0)
  })
})
