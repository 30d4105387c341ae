/** `npx tsx bench/store-writer.ts [--events N]`: events/s persisted through the EventWriter vs one INSERT per event, on one Postgres. */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import pg from 'pg'
import pino from 'pino'
import type { StoredEvent } from '../src/protocol.js'
import { EventWriter } from '../src/store/event-writer.js'
import { createPostgresStore } from '../src/store/postgres.js'
import type { SessionRepository } from '../src/store/types.js'

const TARGET_EVENTS_PER_S = 10_000
const root = new URL('..', import.meta.url)
const { values: args } = parseArgs({
  options: { events: { type: 'string', default: '20000' }, sessions: { type: 'string', default: '50' }, batch: { type: 'string', default: '256' } }
})
const total = Number(args.events)
const sessionCount = Number(args.sessions)
const batchSize = Number(args.batch)
const url = process.env.DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const prefix = `bench-${randomBytes(3).toString('hex')}-`
const out = (line = '') => process.stdout.write(`${line}\n`)

/** A plausible session mix: connect, then turns of user → tool_call → tool_result → assistant. */
function makeEvents (label: string): Array<{ sessionId: string; event: StoredEvent }> {
  const seqs = new Map<string, number>()
  const base = Date.now()
  return Array.from({ length: total }, (_, i) => {
    const sessionId = `${prefix}${label}-${i % sessionCount}`
    const seq = (seqs.get(sessionId) ?? 0) + 1
    seqs.set(sessionId, seq)
    const ts = new Date(base + i).toISOString()
    const turnId = `turn-${Math.floor((seq - 2) / 4)}`
    const kind = seq === 1 ? 0 : ((seq - 2) % 4) + 1
    const event: StoredEvent = kind === 0
      ? { type: 'connected', seq, ts, connectionId: 'bench' }
      : kind === 1
        ? { type: 'user_message', seq, ts, turnId, content: `What is the weather like in city ${i}?` }
        : kind === 2
          ? { type: 'tool_call', seq, ts, turnId, callId: `c${i}`, name: 'get_user_profile', arguments: { userId: 'alice' } }
          : kind === 3
            ? { type: 'tool_result', seq, ts, turnId, callId: `c${i - 1}`, name: 'get_user_profile', ok: true, result: { name: 'Alice', plan: 'pro' }, durationMs: 3 }
            : { type: 'assistant_message', seq, ts, turnId, content: 'A streamed answer of a typical length, a sentence or two long.', finishReason: 'stop' }
    return { sessionId, event }
  })
}

async function ensureSchema (pool: pg.Pool): Promise<void> {
  const found = await pool.query("select 1 from pg_proc where proname = 'rtb_schema_version'")
  if (found.rowCount === 0) {
    out('schema missing: applying supabase-schema.sql')
    await pool.query(await readFile(fileURLToPath(new URL('supabase-schema.sql', root)), 'utf8'))
  }
}

async function viaWriter (store: SessionRepository): Promise<{ seconds: number; roundTrips: number }> {
  let roundTrips = 0
  const counted: SessionRepository = { ...store, appendEvents: async (batch) => { roundTrips++; await store.appendEvents(batch) } }
  const writer = new EventWriter({ store: counted, logger: pino({ level: 'silent' }), batchSize, flushMs: 20, maxPending: total + 1 })
  const events = makeEvents('w')
  const t0 = performance.now()
  const durable = events.map(({ sessionId, event }) => writer.append(sessionId, event))
  await Promise.all(durable)
  const seconds = (performance.now() - t0) / 1000
  await writer.close(5_000)
  return { seconds, roundTrips }
}

/** The naive way: each event its own INSERT, awaited in order (the session rows are made first, untimed). */
async function viaSingleInserts (pool: pg.Pool): Promise<{ seconds: number; roundTrips: number }> {
  const events = makeEvents('b')
  for (const id of new Set(events.map((e) => e.sessionId))) {
    await pool.query('insert into public.sessions (id, started_at) values ($1, now()) on conflict do nothing', [id])
  }
  const t0 = performance.now()
  for (const { sessionId, event } of events) {
    await pool.query(
      'insert into public.session_events (session_id, seq, type, turn_id, payload, created_at) values ($1, $2, $3, $4, $5, $6) on conflict do nothing',
      [sessionId, event.seq, event.type, 'turnId' in event ? event.turnId ?? null : null, JSON.stringify(event), event.ts])
  }
  return { seconds: (performance.now() - t0) / 1000, roundTrips: events.length }
}

async function main (): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  const store = createPostgresStore({ connectionString: url, poolMax: 2, logger: pino({ level: 'silent' }) })
  try {
    await ensureSchema(pool)
    await store.init()
    out(`store-writer bench: ${total} events over ${sessionCount} sessions, writer batch ${batchSize}, on ${new URL(url).host}`)
    const writer = await viaWriter(store)
    const single = await viaSingleInserts(pool)
    const stored = await pool.query<{ n: number }>("select count(*)::int as n from public.session_events where session_id like $1 || 'w-%'", [prefix])
    if (stored.rows[0].n !== total) throw new Error(`writer stored ${stored.rows[0].n} of ${total} events`)

    const rows = [
      { method: 'EventWriter → rtb_append_events', ...writer },
      { method: 'one INSERT per event (pg)', ...single }
    ].map((r) => ({ ...r, eventsPerSecond: Math.round(total / r.seconds) }))
    out()
    out(`${'method'.padEnd(34)} ${'events'.padStart(8)} ${'seconds'.padStart(8)} ${'events/s'.padStart(10)} ${'round trips'.padStart(12)}`)
    for (const r of rows) {
      out(`${r.method.padEnd(34)} ${String(total).padStart(8)} ${r.seconds.toFixed(2).padStart(8)} ${String(r.eventsPerSecond).padStart(10)} ${String(r.roundTrips).padStart(12)}`)
    }
    const speedup = rows[0].eventsPerSecond / rows[1].eventsPerSecond
    const pass = rows[0].eventsPerSecond >= TARGET_EVENTS_PER_S
    out()
    out(`writer is ${speedup.toFixed(1)}× the single-insert baseline; target ≥ ${TARGET_EVENTS_PER_S} events/s: ${pass ? 'met' : 'NOT met'}`)

    await mkdir(fileURLToPath(new URL('bench/results/', root)), { recursive: true })
    const result = {
      bench: 'store-writer', at: new Date().toISOString(), database: new URL(url).host, events: total, sessions: sessionCount,
      batchSize, targetEventsPerSecond: TARGET_EVENTS_PER_S, targetMet: pass, speedup: Number(speedup.toFixed(2)), results: rows
    }
    await writeFile(fileURLToPath(new URL('bench/results/store-writer.json', root)), `${JSON.stringify(result, null, 2)}\n`)
    out('wrote bench/results/store-writer.json')
  } finally {
    await pool.query("delete from public.sessions where id like $1 || '%'", [prefix]).catch(() => {})
    await store.close()
    await pool.end()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`store-writer bench failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
