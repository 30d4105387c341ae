/** EventLog: the bounded in-memory tail of a live session's log. */
import { describe, expect, it } from 'vitest'
import { EventLog } from '../../src/chat/event-log.js'
import type { StoredEvent } from '../../src/protocol.js'

const ts = '2026-11-24T00:00:00.000Z'
const connected = (seq: number): StoredEvent => ({ type: 'connected', seq, ts, connectionId: `c${seq}` })
const user = (seq: number, turnId: string, clientId?: string): StoredEvent => ({ type: 'user_message', seq, ts, turnId, content: 'hi', ...(clientId ? { clientId } : {}) })
const answer = (seq: number, turnId: string): StoredEvent => ({ type: 'assistant_message', seq, ts, turnId, content: 'ok', finishReason: 'stop' })
const seqs = (log: EventLog) => log.events.map((e) => e.seq)
const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('EventLog', () => {
  it('keeps the most recent events, trimming in steps of a quarter', () => {
    const log = new EventLog(8)
    for (let seq = 1; seq <= 9; seq++) log.add(connected(seq))
    expect(seqs(log)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    log.add(connected(10))
    expect(seqs(log)).toEqual([3, 4, 5, 6, 7, 8, 9, 10])
    expect([log.firstSeq, log.lastSeq]).toEqual([3, 10])
    expect(log.at(5)).toEqual(connected(5))
    expect([log.at(2), log.at(11)]).toEqual([undefined, undefined])
  })

  it('never lets an event the store has not settled leave memory; a refusal or failure settles it too', async () => {
    const log = new EventLog(4)
    const writes: Array<{ resolve: (ok: boolean) => void; reject: (err: Error) => void }> = []
    const pending = () => new Promise<boolean>((resolve, reject) => { writes.push({ resolve, reject }) })
    for (let seq = 1; seq <= 12; seq++) log.add(connected(seq), pending())
    expect(seqs(log)).toHaveLength(12)
    writes[0].resolve(true)
    writes[1].resolve(false)
    await tick()
    log.add(connected(13))
    // 1 and 2 settled; 3 still holds everything after it.
    expect(log.firstSeq).toBe(3)
    writes[2].reject(new Error('store refused'))
    for (const w of writes.slice(3)) w.resolve(true)
    await tick()
    log.add(connected(14))
    expect(seqs(log)).toEqual([11, 12, 13, 14])
  })

  it('forgets an event the store refused for good, in the tail and the model context alike, and its clientId', async () => {
    const log = new EventLog(10)
    let refuse!: (ok: boolean) => void
    log.add(user(1, 't1', 'kept'), Promise.resolve(true))
    log.add(user(2, 't2', 'refused'), new Promise<boolean>((resolve) => { refuse = resolve }))
    log.add(answer(3, 't2'), Promise.resolve(true))
    await tick()
    expect(seqs(log)).toEqual([1, 2, 3])
    refuse(false)
    await tick()
    expect(seqs(log)).toEqual([1, 3])
    expect(log.context.map((e) => e.seq)).toEqual([1, 3])
    expect([log.clientSeq('kept'), log.clientSeq('refused'), log.at(2)]).toEqual([1, undefined, undefined])
    expect(log.lastSeq).toBe(3)
  })

  it('knows every clientId and open turn, also of events that left memory', () => {
    const log = new EventLog(10)
    log.add(user(1, 't1', 'first'))
    log.add(answer(2, 't1'))
    for (let seq = 3; seq <= 40; seq++) log.add(connected(seq))
    log.add(user(41, 't2', 'second'))
    expect(log.firstSeq).toBeGreaterThan(2)
    expect([log.clientSeq('first'), log.clientSeq('second'), log.clientSeq('other')]).toEqual([1, 41, undefined])
    expect(log.openTurns).toEqual(['t2'])
  })

  it('finds events by seq across a gap (a store that lost an event)', () => {
    const log = new EventLog(10)
    for (const seq of [1, 2, 3, 4, 6, 7, 8, 9]) log.add(user(seq, `t${seq}`, `k${seq}`))
    expect(log.at(8)).toMatchObject({ seq: 8, clientId: 'k8' })
    expect(log.at(5)).toBeUndefined()
    expect(log.at(1)).toMatchObject({ seq: 1 })
  })

  it('keeps the recent conversation for the model however many connects come between', () => {
    const log = new EventLog(10)
    log.add(user(1, 't1'))
    log.add(answer(2, 't1'))
    for (let seq = 3; seq <= 500; seq++) log.add(connected(seq))
    expect(log.events.every((e) => e.type === 'connected')).toBe(true)
    expect(log.context.map((e) => e.seq)).toEqual([1, 2])
    for (let seq = 501; seq <= 530; seq += 2) { log.add(user(seq, `t${seq}`)); log.add(answer(seq + 1, `t${seq}`)) }
    expect(log.context.length).toBeGreaterThanOrEqual(10)
    expect(log.context.length).toBeLessThan(13)
    expect(log.context.at(-1)!.seq).toBe(530)
  })

  it('an empty log starts after the last seq', () => {
    const log = new EventLog(10)
    expect([log.firstSeq, log.lastSeq, log.events.length]).toEqual([1, 0, 0])
  })
})

describe('EventLog: turns, context and gaps', () => {
  const toolCall = (seq: number, turnId: string): StoredEvent => ({ type: 'tool_call', seq, ts, turnId, callId: `c${seq}`, name: 'f', arguments: '{}' })
  const toolResult = (seq: number, turnId: string): StoredEvent => ({ type: 'tool_result', seq, ts, turnId, callId: `c${seq - 1}`, name: 'f', ok: true, result: 1, durationMs: 1 })

  it('a later turn still has the earlier turns\' tool steps in its context', () => {
    const log = new EventLog(50)
    log.add(user(1, 't1'))
    log.add(toolCall(2, 't1'))
    log.add(toolResult(3, 't1'))
    log.add(answer(4, 't1'))
    log.add(connected(5))
    log.add(user(6, 't2'))
    expect(log.context.map((e) => `${e.seq}:${e.type}`)).toEqual(['1:user_message', '2:tool_call', '3:tool_result', '4:assistant_message', '6:user_message'])
  })

  it('only an assistant_message closes a turn; a tool step does not', () => {
    const log = new EventLog(50)
    log.add(user(1, 't1'))
    log.add(toolCall(2, 't1'))
    log.add(toolResult(3, 't1'))
    expect(log.openTurns).toEqual(['t1'])
    log.add(user(4, 't2'))
    log.add(answer(5, 't1'))
    expect(log.openTurns).toEqual(['t2'])
  })

  it('a message without a clientId records none', () => {
    const log = new EventLog(10)
    log.add(user(1, 't1'))
    log.add({ ...user(2, 't2'), clientId: '' } as StoredEvent)
    expect(log.clientSeq('')).toBeUndefined()
  })

  it('a refused message whose clientId was sent again later keeps the later seq', async () => {
    const log = new EventLog(10)
    let refuse!: (ok: boolean) => void
    log.add(user(1, 't1', 'k'), new Promise<boolean>((resolve) => { refuse = resolve }))
    log.add(user(2, 't2', 'k'), Promise.resolve(true))
    refuse(false)
    await tick()
    expect(log.clientSeq('k')).toBe(2)
    expect(seqs(log)).toEqual([2])
  })

  it('a refusal of an event already trimmed from the context leaves the context alone', async () => {
    const log = new EventLog(4)
    let refuse!: (ok: boolean) => void
    log.add(connected(1), new Promise<boolean>((resolve) => { refuse = resolve }))
    for (let seq = 2; seq <= 9; seq++) log.add(user(seq, `t${seq}`))
    const before = log.context.map((e) => e.seq)
    refuse(false)
    await tick()
    expect(log.context.map((e) => e.seq)).toEqual(before)
    expect(seqs(log)).toEqual([2, 3, 4, 5, 6, 7, 8, 9])
  })

  it('trims the context to keep once it holds a quarter more, in one step', () => {
    const log = new EventLog(8)
    for (let seq = 1; seq <= 9; seq++) log.add(user(seq, `t${seq}`))
    expect(log.context).toHaveLength(9)
    log.add(user(10, 't10'))
    expect(log.context.map((e) => e.seq)).toEqual([3, 4, 5, 6, 7, 8, 9, 10])
    const small = new EventLog(2)
    for (let seq = 1; seq <= 3; seq++) small.add(connected(seq))
    expect(seqs(small)).toEqual([2, 3])
  })

  it('a seq that skips ahead leaves a gap that is lost; skipTo reserves one; neither goes back', () => {
    const log = new EventLog(10)
    log.add(connected(1))
    log.add(connected(4))
    expect([log.lost(1), log.lost(2), log.lost(3), log.lost(4)]).toEqual([false, true, true, false])
    log.skipTo(9)
    expect(log.lastSeq).toBe(9)
    expect([log.lost(4), log.lost(5), log.lost(9), log.lost(10)]).toEqual([false, true, true, false])
    log.skipTo(7)
    expect([log.lastSeq, log.lost(8)]).toEqual([9, true])
    log.skipTo(9)
    expect(log.lastSeq).toBe(9)
    log.add(connected(10))
    expect(log.lost(10)).toBe(false)
    expect(log.firstSeq).toBe(1)
  })

  it('finds every seq of a long log by binary search, and none between or beyond', () => {
    const log = new EventLog(100)
    const present = Array.from({ length: 60 }, (_, i) => i * 2 + 1)
    for (const seq of present) log.add(connected(seq))
    for (const seq of present) expect(log.at(seq)?.seq).toBe(seq)
    for (const seq of [0, 2, 60, 120, 121]) expect(log.at(seq)).toBeUndefined()
  })
})
