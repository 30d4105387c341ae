/** supabase-schema.sql applies cleanly twice with psql -v ON_ERROR_STOP=1 to a fresh database and sets up tables, RLS, functions and privileges. */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { createScratchDatabase } from '../support/postgres.js'

const run = promisify(execFile)
const SCHEMA = fileURLToPath(new URL('../../supabase-schema.sql', import.meta.url))
const hasServer = Boolean(process.env.TEST_DATABASE_URL)
if (process.env.CI === 'true' && !hasServer) throw new Error('CI=true but TEST_DATABASE_URL is not set: the schema test must run in CI')

const FUNCTIONS = [
  'rtb_append_events', 'rtb_end_session', 'rtb_claim_summary_jobs', 'rtb_complete_summary_job', 'rtb_fail_summary_job',
  'rtb_get_session', 'rtb_list_sessions', 'rtb_list_events', 'rtb_get_profile', 'rtb_schema_version'
]
const SUPABASE_ROLES = ['anon', 'authenticated', 'service_role']

async function psql (url: string): Promise<string> {
  const { stdout, stderr } = await run('psql', [url, '-v', 'ON_ERROR_STOP=1', '-q', '-f', SCHEMA])
  return stdout + stderr
}

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
        { relname: 'session_events', relrowsecurity: true, policies: 0 },
        { relname: 'sessions', relrowsecurity: true, policies: 0 }
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

      const indexes = (await query<{ indexname: string }>(scratch.url, "select indexname from pg_indexes where schemaname = 'public'")).map((r) => r.indexname)
      expect(indexes).toEqual(expect.arrayContaining(['sessions_started_at_idx', 'sessions_summary_due_idx', 'session_events_pkey']))
      const profiles = await query<{ user_id: string }>(scratch.url, 'select user_id from public.profiles order by user_id')
      expect(profiles.map((p) => p.user_id)).toEqual(['alice', 'bob', 'demo', 'user-42'])
      expect((await query<{ v: number }>(scratch.url, 'select public.rtb_schema_version() as v'))[0].v).toBe(2)
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
      expect(lists).toEqual([{ args: 'p_limit integer, p_before timestamp with time zone, p_status text, p_before_id text' }])
      expect((await query<{ v: number }>(scratch.url, 'select public.rtb_schema_version() as v'))[0].v).toBe(2)
    } finally {
      await scratch.drop()
    }
  })

  it("where Supabase's roles exist, anon and authenticated can neither call the functions nor read the tables; service_role can", async () => {
    const base = process.env.TEST_DATABASE_URL!
    // Roles are cluster-wide: create the missing ones for this test and drop only those afterwards.
    const created: string[] = []
    for (const role of SUPABASE_ROLES) {
      const exists = await query(base, 'select 1 from pg_roles where rolname = $1', [role])
      if (exists.length === 0) {
        await query(base, `create role ${role} nologin`).then(() => created.push(role), () => {})
      }
    }
    const scratch = await createScratchDatabase()
    try {
      await psql(scratch.url)
      const can = async (role: string, sql: string): Promise<boolean> =>
        (await query<{ ok: boolean }>(scratch.url, sql.replace('$role', `'${role}'`)))[0].ok
      for (const role of ['anon', 'authenticated']) {
        expect(await can(role, "select has_function_privilege($role, 'public.rtb_get_session(text)', 'execute') as ok")).toBe(false)
        expect(await can(role, "select has_function_privilege($role, 'public.rtb_append_events(jsonb)', 'execute') as ok")).toBe(false)
        expect(await can(role, "select has_table_privilege($role, 'public.sessions', 'select') as ok")).toBe(false)
      }
      expect(await can('service_role', "select has_function_privilege($role, 'public.rtb_claim_summary_jobs(text, integer, integer)', 'execute') as ok")).toBe(true)
      expect(await can('service_role', "select has_table_privilege($role, 'public.session_events', 'insert') as ok")).toBe(true)
    } finally {
      await scratch.drop()
      for (const role of created) await query(base, `drop role if exists ${role}`).catch(() => {}) // still granted elsewhere: leave it
    }
  })
})
