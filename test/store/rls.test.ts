/** Row level security for Supabase users (DESIGN §10) on a real Postgres: role authenticated reads only its own sessions and events, and nothing else. */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applySchema, createScratchDatabase, stopTestDatabase } from '../support/postgres.js'

type Role = 'authenticated' | 'anon'

/** What PostgREST sets per request from the caller's JWT. */
const claims = (sub: string): string => JSON.stringify({ sub, role: 'authenticated', aud: 'authenticated' })

const SESSIONS: Array<{ id: string; owner: string | null }> = [
  { id: 'a-1', owner: 'user-A' }, { id: 'a-2', owner: 'user-A' }, { id: 'b-1', owner: 'user-B' }, { id: 'n-1', owner: null }
]
const EVENTS: Array<{ sessionId: string; seq: number }> = [
  { sessionId: 'a-1', seq: 1 }, { sessionId: 'a-1', seq: 2 }, { sessionId: 'a-2', seq: 1 },
  { sessionId: 'b-1', seq: 1 }, { sessionId: 'b-1', seq: 2 }, { sessionId: 'b-1', seq: 3 }, { sessionId: 'n-1', seq: 1 }
]

let scratch: { url: string; drop: () => Promise<void> }
let client: pg.Client

/** Runs `sql` as `role` with the given JWT claims (none: the setting is absent) in a transaction that is rolled back. */
async function as<T extends pg.QueryResultRow> (role: Role, jwtClaims: string | null, sql: string, values: unknown[] = []): Promise<T[]> {
  await client.query('begin')
  try {
    await client.query(`set local role ${role}`)
    if (jwtClaims !== null) await client.query("select set_config('request.jwt.claims', $1, true)", [jwtClaims])
    return (await client.query<T>(sql, values)).rows
  } finally {
    await client.query('rollback')
  }
}

/** The SQLSTATE `sql` fails with as `role`; throws when it succeeds. */
async function refusedWith (role: Role, jwtClaims: string | null, sql: string): Promise<string> {
  const err = await as(role, jwtClaims, sql).then(() => { throw new Error(`expected ${role} to be refused: ${sql}`) }, (e: unknown) => e)
  const code = (err as { code?: unknown }).code
  if (typeof code !== 'string') throw err
  return code
}

const sessionIds = async (role: Role, jwtClaims: string | null): Promise<string[]> =>
  (await as<{ id: string }>(role, jwtClaims, 'select id from public.sessions order by id')).map((r) => r.id)
const eventKeys = async (role: Role, jwtClaims: string | null): Promise<string[]> =>
  (await as<{ k: string }>(role, jwtClaims, "select session_id || '#' || seq as k from public.session_events order by session_id, seq")).map((r) => r.k)
const keysOf = (owner: string): string[] =>
  EVENTS.filter((e) => SESSIONS.find((s) => s.id === e.sessionId)?.owner === owner).map((e) => `${e.sessionId}#${e.seq}`)

beforeAll(async () => {
  // A database of its own: the rows below and the role switches never meet another file's sessions.
  scratch = await createScratchDatabase()
  await applySchema(scratch.url)
  client = new pg.Client({ connectionString: scratch.url })
  await client.connect()
  // As the table owner (the server's connection), which RLS does not filter.
  for (const s of SESSIONS) await client.query('insert into public.sessions (id, owner) values ($1, $2)', [s.id, s.owner])
  for (const e of EVENTS) {
    await client.query("insert into public.session_events (session_id, seq, type, payload) values ($1, $2, 'connected', $3)",
      [e.sessionId, e.seq, JSON.stringify({ type: 'connected', seq: e.seq })])
  }
  await client.query("select public.rtb_add_usage('user-A', '2031-01-01', 42)")
})
afterAll(async () => {
  await client?.end()
  await scratch?.drop()
  await stopTestDatabase()
})

describe('row level security for Supabase users', () => {
  it('the table owner sees every row (the fixture is what the policies filter)', async () => {
    expect((await client.query('select id from public.sessions order by id')).rows.map((r) => r.id)).toEqual(['a-1', 'a-2', 'b-1', 'n-1'])
    expect((await client.query('select count(*)::int as n from public.session_events')).rows[0].n).toBe(EVENTS.length)
  })

  it("an authenticated user selects exactly their own sessions and those sessions' events", async () => {
    expect(await sessionIds('authenticated', claims('user-A'))).toEqual(['a-1', 'a-2'])
    expect(await eventKeys('authenticated', claims('user-A'))).toEqual(['a-1#1', 'a-1#2', 'a-2#1'])
    expect(await eventKeys('authenticated', claims('user-A'))).toEqual(keysOf('user-A'))
    expect(await sessionIds('authenticated', claims('user-B'))).toEqual(['b-1'])
    expect(await eventKeys('authenticated', claims('user-B'))).toEqual(['b-1#1', 'b-1#2', 'b-1#3'])
    // Asking for another user's rows by id finds nothing rather than an error.
    const other = await as<{ n: number }>('authenticated', claims('user-A'),
      "select (select count(*)::int from public.sessions where id = 'b-1') + (select count(*)::int from public.session_events where session_id = 'b-1') as n")
    expect(other).toEqual([{ n: 0 }])
    // Whole rows come back, owner included.
    expect(await as('authenticated', claims('user-B'), 'select id, owner, status from public.sessions')).toEqual([{ id: 'b-1', owner: 'user-B', status: 'active' }])
  })

  it('without a usable sub claim an authenticated role sees nothing, and no claim matches an unowned session', async () => {
    for (const jwt of [null, '', JSON.stringify({ role: 'authenticated' }), claims('user-C'), JSON.stringify({ sub: null })]) {
      expect(await sessionIds('authenticated', jwt), String(jwt)).toEqual([])
      expect(await eventKeys('authenticated', jwt), String(jwt)).toEqual([])
    }
  })

  it('anon cannot read sessions or events at all, whatever the claims say', async () => {
    for (const table of ['sessions', 'session_events']) {
      expect(await refusedWith('anon', null, `select * from public.${table}`)).toBe('42501')
      expect(await refusedWith('anon', claims('user-A'), `select * from public.${table}`)).toBe('42501')
    }
  })

  it('authenticated cannot insert, update or delete sessions or events, even its own (42501)', async () => {
    const writes = [
      "insert into public.sessions (id, owner) values ('a-3', 'user-A')",
      "update public.sessions set title = 'hijacked' where id = 'a-1'",
      "update public.sessions set owner = 'user-A' where id = 'b-1'",
      "delete from public.sessions where id = 'a-1'",
      "insert into public.session_events (session_id, seq, type, payload) values ('a-1', 3, 'connected', '{}')",
      "update public.session_events set payload = '{}' where session_id = 'a-1'",
      "delete from public.session_events where session_id = 'a-1'",
      'truncate public.session_events'
    ]
    for (const sql of writes) {
      expect(await refusedWith('authenticated', claims('user-A'), sql), sql).toBe('42501')
      expect(await refusedWith('anon', null, sql), sql).toBe('42501')
    }
    expect((await client.query("select title, owner from public.sessions where id in ('a-1', 'b-1') order by id")).rows)
      .toEqual([{ title: null, owner: 'user-A' }, { title: null, owner: 'user-B' }])
    expect((await client.query('select count(*)::int as n from public.session_events')).rows[0].n).toBe(EVENTS.length)
  })

  it('the rtb_* functions are the service role\'s only: authenticated and anon are refused', async () => {
    const calls = [
      'select public.rtb_list_sessions(10, null, null, null, null)',
      "select public.rtb_get_session('a-1')",
      "select public.rtb_list_events('a-1', 0, 10)",
      "select public.rtb_claim_session('a-9', 'user-A')",
      "select public.rtb_add_usage('user-A', '2031-01-01', 1)",
      "select public.rtb_get_usage('user-A', '2031-01-01')",
      "select public.rtb_get_profile('alice')"
    ]
    for (const sql of calls) {
      expect(await refusedWith('authenticated', claims('user-A'), sql), sql).toBe('42501')
      expect(await refusedWith('anon', null, sql), sql).toBe('42501')
    }
  })

  it('profiles and user_usage are closed to both roles', async () => {
    for (const table of ['profiles', 'user_usage']) {
      for (const role of ['authenticated', 'anon'] as const) {
        expect(await refusedWith(role, claims('user-A'), `select * from public.${table}`), `${role} ${table}`).toBe('42501')
        expect(await refusedWith(role, claims('alice'), `select * from public.${table}`), `${role} ${table}`).toBe('42501')
      }
    }
    expect((await client.query("select tokens from public.user_usage where principal = 'user-A'")).rows).toEqual([{ tokens: '42' }])
  })
})
