/** createRateLimit: a fixed window of perMinute actions per key, and the exact wait it answers when spent. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createRateLimit } from '../../src/chat/limits.js'

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(Date.UTC(2030, 0, 1))
})
afterEach(() => { vi.useRealTimers() })

describe('createRateLimit', () => {
  it('lets perMinute actions through per key, then answers the ms left in the window', async () => {
    const take = createRateLimit({ perMinute: 2 })
    expect([await take('a'), await take('a')]).toEqual([0, 0])
    expect(await take('a')).toBe(60_000)
    expect(await take('b')).toBe(0)
    vi.setSystemTime(Date.UTC(2030, 0, 1) + 59_250)
    expect(await take('a')).toBe(750)
    vi.setSystemTime(Date.UTC(2030, 0, 1) + 59_999)
    expect(await take('a')).toBe(1)
    vi.setSystemTime(Date.UTC(2030, 0, 1) + 60_000)
    expect(await take('a')).toBe(0)
  })
})
