/** The SQL stores' shared codec: the schema check, the append argument (text Postgres can hold) and rtb_* answers mapped to the port's types. */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { StoredEvent } from '../../src/protocol.js'
import {
  appendEventsJson, checkSchemaVersion, CONFLICT_SQLSTATE, FENCED_SQLSTATE, pgText, SCHEMA_HINT, SCHEMA_VERSION, toAcquired, toEvents, toProfile, toSeqRange,
  toSessionRecord, toSessionRecords, toSummaryJob, toSummaryJobCounts, toUsage
} from '../../src/store/sql-codec.js'
import { StoreError } from '../../src/store/types.js'

const TS = '2030-01-01T00:00:00.000Z'

/** The error `fn` throws (fails the test when it returns). */
function thrown (fn: () => unknown): Error {
  try { fn() } catch (err) { return err as Error }
  throw new Error('expected a throw')
}

describe('checkSchemaVersion', () => {
  it('passes the current version and refuses any other, naming both and the hint, not to be retried', () => {
    expect(checkSchemaVersion(SCHEMA_VERSION, 'apply it')).toBeUndefined()
    for (const found of [SCHEMA_VERSION - 1, SCHEMA_VERSION + 1, 0]) {
      const err = thrown(() => checkSchemaVersion(found, 'apply it'))
      expect(err).toBeInstanceOf(StoreError)
      expect(err.message).toBe(`schema version ${found} found, ${SCHEMA_VERSION} expected: apply it`)
      expect((err as StoreError).retryable).toBe(false)
    }
  })
})

describe('appendEventsJson', () => {
  it('maps each entry to a row: turn_id from the event, the event as payload, epoch only when given', () => {
    const user: StoredEvent = { type: 'user_message', seq: 2, ts: TS, turnId: 't1', content: 'hi' }
    const conn: StoredEvent = { type: 'connected', seq: 1, ts: TS, connectionId: 'c' }
    const rows = JSON.parse(appendEventsJson([
      { sessionId: 's', event: conn },
      { sessionId: 's', event: user, epoch: 3 },
      { sessionId: 's', event: { ...user, seq: 3 }, epoch: 0 }
    ]))
    expect(rows).toEqual([
      { session_id: 's', seq: 1, type: 'connected', turn_id: null, payload: conn, created_at: TS },
      { session_id: 's', seq: 2, type: 'user_message', turn_id: 't1', payload: user, created_at: TS, epoch: 3 },
      { session_id: 's', seq: 3, type: 'user_message', turn_id: 't1', payload: { ...user, seq: 3 }, created_at: TS, epoch: 0 }
    ])
    expect(Object.keys(rows[0])).not.toContain('epoch')
  })

  it('a turnId that is not a string is no turn_id', () => {
    const odd = { type: 'connected', seq: 1, ts: TS, connectionId: 'c', turnId: 7 } as unknown as StoredEvent
    expect(JSON.parse(appendEventsJson([{ sessionId: 's', event: odd }]))[0].turn_id).toBeNull()
  })

  it('replaces NUL and lone surrogates in every string and every object key, nested too, and leaves clean ones alone', () => {
    const event = {
      type: 'tool_call', seq: 1, ts: TS, turnId: 't', callId: 'c', name: 'f',
      arguments: { 'a\u0000b': { '\ud800k': ['x\u0000', 'ok \ud83d\ude00'] }, clean: 'v\udc00', n: 1, z: null }
    } as unknown as StoredEvent
    const text = appendEventsJson([{ sessionId: 's\u0000', event }])
    expect(text).not.toMatch(/\\u0000|\\ud[89ab]|\\udc/)
    const [row] = JSON.parse(text)
    expect(row.session_id).toBe('s\uFFFD')
    expect(row.payload.arguments).toEqual({ 'a\uFFFDb': { '\uFFFDk': ['x\uFFFD', 'ok \ud83d\ude00'] }, clean: 'v\uFFFD', n: 1, z: null })
    // Key order is kept when keys are cleaned.
    expect(Object.keys(row.payload.arguments)).toEqual(['a\uFFFDb', 'clean', 'n', 'z'])
  })
})

describe('pgText', () => {
  it('replaces every NUL and every lone surrogate, keeps pairs and clean text', () => {
    expect(pgText('a\u0000b\u0000c')).toBe('a\uFFFDb\uFFFDc')
    expect(pgText('\udc00x\ud800')).toBe('\uFFFDx\uFFFD')
    expect(pgText('\ud83d\ude00 plain')).toBe('\ud83d\ude00 plain')
    expect(pgText('')).toBe('')
  })
})

describe('answers mapped to the port', () => {
  const raw = {
    id: 's1', owner: 'u', status: 'ended', startedAt: TS, endedAt: TS, durationMs: '1500', summary: 'sum',
    summaryStatus: 'done', summaryError: 'e', messageCount: '4', lastSeq: '9', title: 'T', openTurnId: 't', version: '2'
  }

  it('toSessionRecord narrows numbers given as strings and fills absent optional fields with null', () => {
    expect(toSessionRecord(raw)).toEqual({ ...raw, durationMs: 1500, messageCount: 4, lastSeq: 9, version: 2 })
    expect(toSessionRecord({ id: 's2', status: 'active', startedAt: TS, summaryStatus: 'none', messageCount: 0, lastSeq: 0, version: 1 })).toEqual({
      id: 's2', owner: null, status: 'active', startedAt: TS, endedAt: null, durationMs: null, summary: null, summaryStatus: 'none',
      summaryError: null, messageCount: 0, lastSeq: 0, title: null, openTurnId: null, version: 1
    })
    expect(toSessionRecord({ ...raw, durationMs: null })?.durationMs).toBeNull()
    expect(toSessionRecord({ ...raw, durationMs: 0 })?.durationMs).toBe(0)
    expect(toSessionRecord(null)).toBeNull()
    expect(toSessionRecord(undefined)).toBeNull()
  })

  it('lists: an array is mapped, null is empty, anything else is a TypeError naming its type', () => {
    expect(toSessionRecords([raw, raw]).map((r) => r.lastSeq)).toEqual([9, 9])
    expect(toSessionRecords(null)).toEqual([])
    expect(toEvents(undefined)).toEqual([])
    const events = [{ type: 'connected', seq: 1 }]
    expect(toEvents(events)).toBe(events)
    const err = thrown(() => toEvents({ not: 'a list' }))
    expect(err).toBeInstanceOf(TypeError)
    expect(err.message).toBe('expected a JSON array from the database, got object')
  })

  it('toSummaryJob takes lease_until as a Date or a timestamptz string', () => {
    const at = new Date('2030-01-01T00:00:05.000Z')
    expect(toSummaryJob({ session_id: 's', version: '3' as unknown as number, attempts: 2, lease_until: at })).toEqual({
      sessionId: 's', version: 3, attempts: 2, leaseUntil: '2030-01-01T00:00:05.000Z'
    })
    expect(toSummaryJob({ session_id: 's', version: 3, attempts: '1' as unknown as number, lease_until: '2030-01-01 00:00:05+00' }).leaseUntil)
      .toBe('2030-01-01T00:00:05.000Z')
  })

  it('toUsage: a bigint string or number, null as 0, anything unsafe refused', () => {
    expect(toUsage('123')).toBe(123)
    expect(toUsage(45)).toBe(45)
    expect(toUsage(null)).toBe(0)
    expect(toUsage(undefined)).toBe(0)
    const err = thrown(() => toUsage('9007199254740993'))
    expect(err).toBeInstanceOf(TypeError)
    expect(err.message).toBe('expected a token count from the database, got 9007199254740993')
    expect(() => toUsage('x')).toThrow('got x')
    expect(() => toUsage(1.5)).toThrow(TypeError)
  })

  it('toProfile and toSummaryJobCounts', () => {
    const profile = { userId: 'u', name: 'N' }
    expect(toProfile(profile)).toBe(profile)
    expect(toProfile(null)).toBeNull()
    expect(toProfile(undefined)).toBeNull()
    expect(toSummaryJobCounts({ pending: '2', running: 1, failed: '0' })).toEqual({ pending: 2, running: 1, failed: 0 })
    expect(toSummaryJobCounts({ pending: 5 })).toEqual({ pending: 5, running: 0, failed: 0 })
    expect(toSummaryJobCounts(null)).toEqual({ pending: 0, running: 0, failed: 0 })
  })

  it('toSeqRange: numbers only, else a StoreError quoting the answer', () => {
    expect(toSeqRange({ from: 3, to: 7 })).toEqual({ from: 3, to: 7 })
    expect(toSeqRange({ from: 1, to: 0, extra: true })).toEqual({ from: 1, to: 0 })
    for (const bad of [null, { from: '3', to: 7 }, { from: 3, to: '7' }, { from: 3 }]) {
      const err = thrown(() => toSeqRange(bad))
      expect(err).toBeInstanceOf(StoreError)
      expect(err.message).toBe(`reserveSeqs: unexpected answer ${JSON.stringify(bad)}`)
      expect((err as StoreError).retryable).toBe(false)
    }
  })

  it('toAcquired: held by another instance, owned with an epoch and seqs, or refused', () => {
    expect(toAcquired({ held: 'node-b', until: '2030-01-01T00:00:30Z' })).toEqual({ type: 'held', instance: 'node-b', until: '2030-01-01T00:00:30Z' })
    expect(toAcquired({ epoch: 4, from: 10, to: 73 })).toEqual({ type: 'owned', epoch: 4, from: 10, to: 73 })
    expect(toAcquired({ held: 'node-b', until: 5, epoch: 4, from: 1, to: 2 })).toEqual({ type: 'held', instance: 'node-b', until: '5' })
    for (const bad of [null, { epoch: '4', from: 1, to: 2 }, { held: 7, from: 1, to: 2 }]) {
      const err = thrown(() => toAcquired(bad))
      expect(err).toBeInstanceOf(StoreError)
      expect(err.message).toBe(`acquireSession: unexpected answer ${JSON.stringify(bad)}`)
      expect((err as StoreError).retryable).toBe(false)
    }
    expect(() => toAcquired({ epoch: 4, from: 1 })).toThrow('reserveSeqs: unexpected answer')
  })
})

describe('what the code and supabase-schema.sql must agree on', () => {
  const schema = readFileSync(new URL('../../supabase-schema.sql', import.meta.url), 'utf8')

  it('the schema declares the version the code expects, and the hint names that file and how to apply it', () => {
    expect(schema).toMatch(new RegExp(`rtb_schema_version\\(\\) returns integer[^$]*\\$\\$ select ${SCHEMA_VERSION} \\$\\$`))
    expect(SCHEMA_HINT).toBe('apply supabase-schema.sql (psql -v ON_ERROR_STOP=1 -f supabase-schema.sql)')
  })

  it('the SQLSTATEs the code maps are the ones the functions raise: fenced for a stale epoch, conflict for another event', () => {
    const raised = (code: string) => [...schema.matchAll(new RegExp(`raise exception '([a-z_]+):[^']*'[^;]*errcode = '${code}'`, 'g'))].map((m) => m[1])
    expect(raised(FENCED_SQLSTATE)).toEqual(['rtb_append_events', 'rtb_reserve_seqs', 'rtb_end_session'])
    expect(raised(CONFLICT_SQLSTATE)).toEqual(['rtb_append_events'])
    expect(schema.match(new RegExp(`errcode = '${FENCED_SQLSTATE}'`, 'g'))).toHaveLength(3)
  })
})
