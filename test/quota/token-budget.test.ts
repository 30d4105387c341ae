/** createTokenBudget over the real memory store: today's count per principal, the UTC day, and reads that wait for writes. */
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { createTokenBudget, utcDay } from '../../src/quota/token-budget.js'
import { createMemoryStore } from '../../src/store/memory.js'

const DAY = 86_400_000
const T0 = Date.UTC(2030, 0, 1, 23, 0, 0) // an hour before midnight UTC

function logged (): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  return { logger: pino({ level: 'debug' }, { write: (l: string) => { lines.push(JSON.parse(l)) } }), lines }
}

/** The memory store, with addUsage calls counted and, when asked, held until the test lets them through. */
function gatedStore () {
  const inner = createMemoryStore()
  const gates: Array<() => void> = []
  const store = {
    held: false,
    adds: [] as Array<{ principal: string; day: string; tokens: number }>,
    reads: 0,
    async addUsage (opts: { principal: string; day: string; tokens: number }) {
      store.adds.push(opts)
      if (store.held) await new Promise<void>((resolve) => gates.push(resolve))
      return await inner.addUsage(opts)
    },
    async getUsage (opts: { principal: string; day: string }) {
      store.reads++
      return await inner.getUsage(opts)
    },
    open: (i: number) => { gates[i]() }
  }
  return store
}

describe('utcDay', () => {
  it('is the UTC date of a time', () => {
    expect(utcDay(Date.UTC(2030, 0, 1, 23, 59, 59, 999))).toBe('2030-01-01')
    expect(utcDay(Date.UTC(2030, 0, 2))).toBe('2030-01-02')
  })
})

describe('createTokenBudget', () => {
  it('without a limit: always ok with remaining null, no store read, usage still counted', async () => {
    const store = gatedStore()
    const budget = createTokenBudget({ store, limit: null, logger: logged().logger, now: () => T0 })
    expect(budget.limit).toBeNull()
    expect(await budget.check('u')).toEqual({ ok: true, remaining: null })
    expect(store.reads).toBe(0)
    await budget.record('u', 12)
    expect(await budget.usedToday('u')).toBe(12)
  })

  it('counts per principal and per UTC day; spent means refused until the next midnight UTC, to the ms', async () => {
    let now = T0
    const store = gatedStore()
    const budget = createTokenBudget({ store, limit: 100, logger: logged().logger, now: () => now })
    expect(budget.limit).toBe(100)
    expect(await budget.check('u')).toEqual({ ok: true, remaining: 100 })
    await budget.record('u', 30)
    expect(store.adds).toEqual([{ principal: 'u', day: '2030-01-01', tokens: 30 }])
    expect(await budget.check('u')).toEqual({ ok: true, remaining: 70 })
    expect(await budget.check('other')).toEqual({ ok: true, remaining: 100 })
    await budget.record('u', 69)
    expect(await budget.check('u')).toEqual({ ok: true, remaining: 1 })
    await budget.record('u', 1)
    expect(await budget.check('u')).toEqual({ ok: false, retryAfterMs: 3_600_000 })
    now = T0 + 3_600_000 - 1
    expect(await budget.check('u')).toEqual({ ok: false, retryAfterMs: 1 })
    now = T0 + 3_600_000 // midnight: a new day, a new count
    expect(await budget.usedToday('u')).toBe(0)
    expect(await budget.check('u')).toEqual({ ok: true, remaining: 100 })
    await budget.record('u', 100)
    expect(await budget.check('u')).toEqual({ ok: false, retryAfterMs: DAY })
  })

  it('records whole tokens rounded up, and nothing for zero, negative or NaN counts', async () => {
    const store = gatedStore()
    const budget = createTokenBudget({ store, limit: 10, logger: logged().logger, now: () => T0 })
    for (const n of [0, -5, Number.NaN]) await budget.record('u', n)
    expect(store.adds).toEqual([])
    await budget.record('u', 2.1)
    expect(store.adds.map((a) => a.tokens)).toEqual([3])
    expect(await budget.usedToday('u')).toBe(3)
  })

  it('a failed write is logged with the principal and tokens, and never rejects', async () => {
    const { logger, lines } = logged()
    const failing = { addUsage: async () => { throw new Error('store down') }, getUsage: async () => 0 }
    const budget = createTokenBudget({ store: failing, limit: 10, logger, now: () => T0 })
    await expect(budget.record('u', 4)).resolves.toBeUndefined()
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: 50, msg: 'could not record token usage', principal: 'u', tokens: 4, err: { message: 'store down' } })
  })

  it('a read waits for every write of that principal still on its way, not for other principals', async () => {
    const store = gatedStore()
    const budget = createTokenBudget({ store, limit: 100, logger: logged().logger, now: () => T0 })
    store.held = true
    const first = budget.record('u', 30)
    const second = budget.record('u', 40)
    expect(await budget.usedToday('v')).toBe(0)
    let read: number | undefined
    const reading = budget.check('u').then((v) => { read = v.ok ? 100 - (v.remaining ?? 0) : -1 })
    store.open(0)
    await first
    const late = budget.usedToday('u')
    expect(read).toBeUndefined()
    store.open(1)
    await second
    await reading
    expect(read).toBe(70)
    expect(await late).toBe(70)
    // Nothing left waiting: a later read goes straight to the store.
    store.held = false
    expect(await budget.usedToday('u')).toBe(70)
  })
})
