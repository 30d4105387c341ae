/** The PostgREST stand-in answers supabase-js rpc() calls the way PostgREST documents it (result shapes, errors, statuses). */
import { randomBytes } from 'node:crypto'
import { createClient } from '@supabase/supabase-js'
import pg from 'pg'
import ws from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getTestDatabaseUrl, stopTestDatabase } from './postgres.js'
import { startPostgrestStandIn, type PostgrestStandIn } from './postgrest-stand-in.js'

const key = `k-${randomBytes(6).toString('hex')}`
const schema = `standin_${randomBytes(4).toString('hex')}`
let databaseUrl: string
let standIn: PostgrestStandIn

const FUNCTIONS = `
  create schema ${schema};
  create table ${schema}.items (id int primary key, name text);
  insert into ${schema}.items values (1, 'one'), (2, 'two'), (3, 'three');
  create function ${schema}.add_them(a int, b int) returns int language sql immutable as $$ select a + b $$;
  create function ${schema}.greet(name text, greeting text default 'hello') returns text language sql immutable as $$ select greeting || ' ' || name $$;
  create function ${schema}.nothing() returns void language sql as $$ select $$;
  create function ${schema}.items_after(p_id int) returns setof ${schema}.items language sql stable as $$ select * from ${schema}.items where id > p_id order by id $$;
  create function ${schema}.pairs(p_n int) returns table (n int, label text) language sql immutable as $$ select g, 'n' || g from generate_series(1, p_n) g $$;
  create sequence ${schema}.counter;
  create function ${schema}.sneaky_write() returns bigint language sql stable as $$ select nextval('${schema}.counter') $$;
  create function ${schema}.fail(p_why text) returns int language plpgsql as $$
    begin raise exception 'refused: %', p_why using detail = 'some detail', hint = 'some hint'; end $$;
  create function ${schema}.dup() returns int language sql as $$ insert into ${schema}.items values (1, 'again') returning id $$;
`

async function sql (text: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try { await client.query(text) } finally { await client.end() }
}

function client (opts: { apiKey?: string; db?: string } = {}) {
  return createClient(standIn.url, opts.apiKey ?? key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: ws as never },
    db: { schema: opts.db ?? schema }
  })
}

beforeAll(async () => {
  databaseUrl = await getTestDatabaseUrl()
  await sql(FUNCTIONS)
  standIn = await startPostgrestStandIn({ databaseUrl, serviceKey: key, schemas: ['public', schema] })
})
afterAll(async () => {
  await standIn?.close()
  await sql(`drop schema if exists ${schema} cascade`)
  await stopTestDatabase()
})

describe('PostgREST stand-in', () => {
  it('returns a scalar as its JSON value and applies argument defaults', async () => {
    const rpc = client().rpc.bind(client())
    expect(await rpc('add_them', { a: 1, b: 2 })).toMatchObject({ data: 3, error: null, status: 200 })
    expect((await rpc('greet', { name: 'Ada' })).data).toBe('hello Ada')
    expect((await rpc('greet', { name: 'Ada', greeting: 'hi' })).data).toBe('hi Ada')
  })

  it('answers 204 with no body for void and an array of rows for setof / returns table', async () => {
    const c = client()
    expect(await c.rpc('nothing')).toMatchObject({ data: null, error: null, status: 204 })
    expect((await c.rpc('items_after', { p_id: 1 })).data).toEqual([{ id: 2, name: 'two' }, { id: 3, name: 'three' }])
    expect((await c.rpc('items_after', { p_id: 5 })).data).toEqual([])
    expect((await c.rpc('pairs', { p_n: 2 })).data).toEqual([{ n: 1, label: 'n1' }, { n: 2, label: 'n2' }])
  })

  it('runs stable functions read-only: a write answers 405 with 25006', async () => {
    const { error, status } = await client().rpc('sneaky_write')
    expect(status).toBe(405)
    expect(error).toMatchObject({ code: '25006' })
  })

  it('forwards SQL errors with message, details and hint: P0001 → 400, 23505 → 409', async () => {
    const failed = await client().rpc('fail', { p_why: 'because' })
    expect(failed.status).toBe(400)
    expect(failed.error).toEqual({ code: 'P0001', message: 'refused: because', details: 'some detail', hint: 'some hint' })
    const dup = await client().rpc('dup')
    expect(dup.status).toBe(409)
    expect(dup.error).toMatchObject({ code: '23505' })
  })

  it('answers PGRST202 (404) for an unknown function or unknown argument names', async () => {
    for (const [fn, args] of [['no_such_fn', {}], ['add_them', { a: 1, c: 2 }], ['add_them', { a: 1 }]] as const) {
      const { error, status } = await client().rpc(fn, args)
      expect(status).toBe(404)
      expect(error).toMatchObject({ code: 'PGRST202' })
      expect(error!.message).toContain(`${schema}.${fn}`)
    }
  })

  it('refuses a wrong key (401) and a schema that is not exposed (406 PGRST106)', async () => {
    const unauthorised = await client({ apiKey: 'wrong' }).rpc('add_them', { a: 1, b: 1 })
    expect(unauthorised.status).toBe(401)
    expect(unauthorised.data).toBeNull()
    const hidden = await client({ db: 'pg_catalog' }).rpc('now')
    expect(hidden.status).toBe(406)
    expect(hidden.error).toMatchObject({ code: 'PGRST106' })
  })
})
