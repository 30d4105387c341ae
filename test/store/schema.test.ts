/** supabase-schema.sql applies cleanly twice with psql -v ON_ERROR_STOP=1 to a fresh database and sets up tables, RLS, functions and privileges. */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { createScratchDatabase } from '../support/postgres.js'

const run = promisify(execFile)
const SCHEMA = fileURLToPath(new URL('../../supabase-schema.sql', import.meta.url))
const SCHEMA_V2 = fileURLToPath(new URL('./fixtures/supabase-schema-v2.sql', import.meta.url))
const SCHEMA_V3 = fileURLToPath(new URL('./fixtures/supabase-schema-v3.sql', import.meta.url))
const hasServer = Boolean(process.env.TEST_DATABASE_URL)
if (process.env.CI === 'true' && !hasServer) throw new Error('CI=true but TEST_DATABASE_URL is not set: the schema test must run in CI')

const FUNCTIONS = [
  'rtb_append_events', 'rtb_end_session', 'rtb_claim_summary_jobs', 'rtb_complete_summary_job', 'rtb_fail_summary_job',
  'rtb_get_session', 'rtb_list_sessions', 'rtb_list_events', 'rtb_get_profile', 'rtb_schema_version',
  'rtb_claim_session', 'rtb_add_usage', 'rtb_get_usage', 'rtb_summary_job_counts', 'rtb_remember_approval', 'rtb_is_approval_remembered',
  'rtb_reserve_seqs', 'rtb_release_seqs', 'rtb_acquire_session', 'rtb_renew_leases', 'rtb_list_lapsed_sessions'
]
const LIST_SESSIONS_ARGS = 'p_limit integer, p_before timestamp with time zone, p_status text, p_before_id text, p_owner text'

async function psql (url: string, file = SCHEMA): Promise<string> {
  const { stdout, stderr } = await run('psql', [url, '-v', 'ON_ERROR_STOP=1', '-q', '-f', file])
  return stdout + stderr
}

const version = async (url: string): Promise<number> => (await query<{ v: number }>(url, 'select public.rtb_schema_version() as v'))[0].v

async function query<T extends pg.QueryResultRow> (url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try { return (await client.query<T>(text, values)).rows } finally { await client.end() }
}

describe.skipIf(!hasServer)('supabase-schema.sql with psql (needs TEST_DATABASE_URL: psql cannot reach the embedded PGlite)', () => {
  it('applies twice in a row to a fresh database, quietly, and leaves the documented objects', async () => {
    const scratch = await createScratchDatabase()
    try {
      expect(await psql(scratch.url)).toBe('')
      expect(await psql(scratch.url)).toBe('') // idempotent: no error, not even a notice

      const tables = await query<{ relname: string; relrowsecurity: boolean; policies: number }>(scratch.url, `
        select c.relname, c.relrowsecurity, (select count(*)::int from pg_policy p where p.polrelid = c.oid) as policies
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind = 'r' order by c.relname`)
      expect(tables).toEqual([
        { relname: 'profiles', relrowsecurity: true, policies: 0 },
        { relname: 'session_events', relrowsecurity: true, policies: 1 },
        { relname: 'sessions', relrowsecurity: true, policies: 1 },
        { relname: 'tool_approvals', relrowsecurity: true, policies: 0 },
        { relname: 'user_usage', relrowsecurity: true, policies: 0 }
      ])
      // The only policies: select, for role authenticated.
      const policies = await query<{ polname: string; polcmd: string; roles: string[] }>(scratch.url, `
        select p.polname, p.polcmd::text, array(select r.rolname::text from pg_roles r where r.oid = any (p.polroles) order by 1) as roles
        from pg_policy p order by p.polname`)
      expect(policies).toEqual([
        { polname: 'session_events_select_own', polcmd: 'r', roles: ['authenticated'] },
        { polname: 'sessions_select_own', polcmd: 'r', roles: ['authenticated'] }
      ])

      const fns = await query<{ proname: string; prosecdef: boolean; proconfig: string[] | null; public_exec: boolean }>(scratch.url, `
        select p.proname, p.prosecdef, p.proconfig,
               exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                       where a.grantee = 0 and a.privilege_type = 'EXECUTE') as public_exec
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.proname like 'rtb\\_%'`)
      const byName = new Map(fns.map((f) => [f.proname, f]))
      for (const name of FUNCTIONS) {
        expect(byName.get(name), name).toMatchObject({ prosecdef: false, proconfig: ['search_path=public'], public_exec: false })
      }
      expect(fns.filter((f) => f.proname === 'rtb_list_sessions')).toHaveLength(1)

      const indexes = (await query<{ indexname: string }>(scratch.url, "select indexname from pg_indexes where schemaname = 'public'")).map((r) => r.indexname)
      expect(indexes).toEqual(expect.arrayContaining([
        'sessions_started_at_idx', 'sessions_owner_started_at_idx', 'sessions_summary_due_idx', 'sessions_summary_failed_idx', 'session_events_pkey', 'user_usage_pkey'
      ]))
      const ownerIndex = await query<{ def: string }>(scratch.url, "select indexdef as def from pg_indexes where indexname = 'sessions_owner_started_at_idx'")
      expect(ownerIndex[0].def).toContain('(owner, started_at DESC, id DESC)')
      const profiles = await query<{ user_id: string }>(scratch.url, 'select user_id from public.profiles order by user_id')
      expect(profiles.map((p) => p.user_id)).toEqual(['alice', 'bob', 'demo', 'user-42'])
      expect(await version(scratch.url)).toBe(7)
    } finally {
      await scratch.drop()
    }
  })

  it('upgrades a version-2 database holding sessions: owners, usage, policies and the five-argument list, data kept', async () => {
    const scratch = await createScratchDatabase()
    try {
      expect(await psql(scratch.url, SCHEMA_V2)).toBe('')
      expect(await version(scratch.url)).toBe(2)
      await query(scratch.url, `select public.rtb_append_events($1::jsonb)`, [JSON.stringify([
        { session_id: 'v2-a', seq: 1, type: 'user_message', turn_id: 't', payload: { type: 'user_message', seq: 1, ts: '2024-01-01T00:00:00.000Z', turnId: 't', content: 'from v2' }, created_at: '2024-01-01T00:00:00.000Z' }
      ])])
      const v2Lists = await query<{ args: string }>(scratch.url, "select pg_get_function_identity_arguments(oid) as args from pg_proc where proname = 'rtb_list_sessions'")
      expect(v2Lists).toEqual([{ args: 'p_limit integer, p_before timestamp with time zone, p_status text, p_before_id text' }])

      expect(await psql(scratch.url)).toBe('')
      expect(await psql(scratch.url)).toBe('')
      expect(await version(scratch.url)).toBe(7)
      const lists = await query<{ args: string }>(scratch.url, "select pg_get_function_identity_arguments(oid) as args from pg_proc where proname = 'rtb_list_sessions'")
      expect(lists).toEqual([{ args: LIST_SESSIONS_ARGS }])
      const [{ r: kept }] = await query<{ r: Record<string, unknown> }>(scratch.url, "select public.rtb_get_session('v2-a') as r")
      expect(kept).toMatchObject({ id: 'v2-a', owner: null, title: 'from v2', lastSeq: 1, messageCount: 1, openTurnId: 't' })
      const [{ r: listed }] = await query<{ r: unknown[] }>(scratch.url, 'select public.rtb_list_sessions(10, null, null, null, null) as r')
      expect(listed).toEqual([kept])
      expect((await query<{ o: string | null }>(scratch.url, "select public.rtb_claim_session('v2-a', 'someone') as o"))[0].o).toBeNull()
      expect((await query<{ n: string }>(scratch.url, "select public.rtb_add_usage('p', '2024-01-01', 5) as n"))[0].n).toBe('5')
      const policies = await query<{ n: number }>(scratch.url, 'select count(*)::int as n from pg_policy')
      expect(policies[0].n).toBe(2)
    } finally {
      await scratch.drop()
    }
  })

  it('upgrades a version-3 database holding sessions: seq reservations start past each stored log, data kept', async () => {
    const scratch = await createScratchDatabase()
    try {
      expect(await psql(scratch.url, SCHEMA_V3)).toBe('')
      expect(await version(scratch.url)).toBe(3)
      const event = (seq: number) => ({ session_id: 'v3-a', seq, type: 'connected', turn_id: null, payload: { type: 'connected', seq, ts: '2024-01-01T00:00:00.000Z', connectionId: `c${seq}` }, created_at: '2024-01-01T00:00:00.000Z' })
      await query(scratch.url, 'select public.rtb_append_events($1::jsonb)', [JSON.stringify([event(1), event(2), event(3)])])
      expect(await psql(scratch.url)).toBe('')
      expect(await psql(scratch.url)).toBe('')
      expect(await version(scratch.url)).toBe(7)
      const acquire = async (id: string) =>
        (await query<{ r: unknown }>(scratch.url, "select public.rtb_acquire_session($1, 'inst', 1000, 10, false) as r", [id]))[0].r
      expect(await acquire('v3-a')).toEqual({ epoch: 1, from: 4, to: 13 })
      expect(await acquire('v3-new')).toEqual({ epoch: 0, from: 1, to: 0 })
      const [{ r: kept }] = await query<{ r: Record<string, unknown> }>(scratch.url, "select public.rtb_get_session('v3-a') as r")
      expect(kept).toMatchObject({ id: 'v3-a', lastSeq: 3, status: 'active' })
      const reserves = await query<{ args: string }>(scratch.url, "select pg_get_function_identity_arguments(oid) as args from pg_proc where proname = 'rtb_reserve_seqs'")
      expect(reserves).toEqual([{ args: 'p_session_id text, p_count integer, p_epoch integer' }])
      const ends = await query<{ args: string }>(scratch.url, "select pg_get_function_identity_arguments(oid) as args from pg_proc where proname = 'rtb_end_session'")
      expect(ends).toEqual([{ args: 'p_session_id text, p_ended_at timestamp with time zone, p_epoch integer' }])
    } finally {
      await scratch.drop()
    }
  })

  it('upgrades a version-1 database: its three-argument rtb_list_sessions is replaced, not left as an overload', async () => {
    const scratch = await createScratchDatabase()
    try {
      await psql(scratch.url)
      // What version 1 left behind (its list function had no id in the cursor).
      await query(scratch.url, `create function public.rtb_list_sessions(p_limit integer, p_before timestamptz, p_status text) returns jsonb
        language sql stable as $$ select '[]'::jsonb $$`)
      await query(scratch.url, 'create or replace function public.rtb_schema_version() returns integer language sql immutable as $$ select 1 $$')
      expect(await psql(scratch.url)).toBe('')
      const lists = await query<{ args: string }>(scratch.url,
        "select pg_get_function_identity_arguments(oid) as args from pg_proc where proname = 'rtb_list_sessions'")
      expect(lists).toEqual([{ args: LIST_SESSIONS_ARGS }])
      expect(await version(scratch.url)).toBe(7)
    } finally {
      await scratch.drop()
    }
  })

  it('gives anon nothing and authenticated select on sessions and session_events only; service_role (where it exists) everything', async () => {
    const base = process.env.TEST_DATABASE_URL!
    // The file creates anon and authenticated itself; service_role only exists on Supabase. Roles are
    // cluster-wide: create it for this test when missing and drop it afterwards unless something else uses it.
    const created: string[] = []
    if ((await query(base, "select 1 from pg_roles where rolname = 'service_role'")).length === 0) {
      await query(base, 'create role service_role nologin').then(() => created.push('service_role'), () => {})
    }
    const scratch = await createScratchDatabase()
    try {
      await psql(scratch.url)
      const can = async (role: string, sql: string): Promise<boolean> =>
        (await query<{ ok: boolean }>(scratch.url, sql.replace('$role', `'${role}'`)))[0].ok
      const rtb = await query<{ fn: string }>(scratch.url, `
        select p.oid::regprocedure::text as fn from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.proname like 'rtb\\_%'`)
      expect(rtb.length).toBeGreaterThanOrEqual(FUNCTIONS.length)
      for (const role of ['anon', 'authenticated']) {
        for (const { fn } of rtb) expect(await can(role, `select has_function_privilege($role, '${fn}', 'execute') as ok`), `${role} ${fn}`).toBe(false)
        for (const table of ['profiles', 'user_usage']) {
          for (const priv of ['select', 'insert', 'update', 'delete', 'truncate']) {
            expect(await can(role, `select has_table_privilege($role, 'public.${table}', '${priv}') as ok`), `${role} ${priv} ${table}`).toBe(false)
          }
        }
        for (const table of ['sessions', 'session_events']) {
          expect(await can(role, `select has_table_privilege($role, 'public.${table}', 'select') as ok`), `${role} select ${table}`).toBe(role === 'authenticated')
          for (const priv of ['insert', 'update', 'delete', 'truncate', 'references', 'trigger']) {
            expect(await can(role, `select has_table_privilege($role, 'public.${table}', '${priv}') as ok`), `${role} ${priv} ${table}`).toBe(false)
          }
        }
      }
      for (const { fn } of rtb) expect(await can('service_role', `select has_function_privilege($role, '${fn}', 'execute') as ok`), fn).toBe(true)
      expect(await can('service_role', "select has_table_privilege($role, 'public.session_events', 'insert') as ok")).toBe(true)
      expect(await can('service_role', "select has_table_privilege($role, 'public.user_usage', 'update') as ok")).toBe(true)
    } finally {
      await scratch.drop()
      for (const role of created) await query(base, `drop role if exists ${role}`).catch(() => {}) // still granted elsewhere: leave it
    }
  })
})
