/** Real Postgres for tests: TEST_DATABASE_URL or one embedded PGlite served over the wire protocol, the schema, scratch databases. */
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import pg from 'pg'

export { closedPort, createTcpProxy, type TcpProxy } from './tcp-proxy.js'

const SCHEMA_PATH = fileURLToPath(new URL('../../supabase-schema.sql', import.meta.url))
const SCHEMA_LOCK = 727_2024

interface Embedded { url: string; stop: () => Promise<void> }
let embedded: Promise<Embedded> | undefined
const applied = new Map<string, Promise<void>>()

/** True when tests run on the embedded PGlite (one backend: no real concurrency, no CREATE DATABASE). */
export function usingEmbeddedDatabase (): boolean {
  return !process.env.TEST_DATABASE_URL
}

/** TEST_DATABASE_URL when set; else one PGlite per test process, served by pglite-socket on 127.0.0.1:0. */
export async function getTestDatabaseUrl (): Promise<string> {
  const fromEnv = process.env.TEST_DATABASE_URL
  if (fromEnv) return fromEnv
  embedded ??= startEmbedded()
  return (await embedded).url
}

/** Stops this process's embedded PGlite, if one was started (call from afterAll). */
export async function stopTestDatabase (): Promise<void> {
  const e = embedded
  embedded = undefined
  applied.clear()
  if (e) await (await e).stop()
}

async function startEmbedded (): Promise<Embedded> {
  const { PGlite } = await import('@electric-sql/pglite')
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket')
  const db = await PGlite.create()
  // pglite-socket multiplexes connections onto the single PGlite backend, one protocol message at a time.
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 64 })
  await server.start()
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    stop: async () => { await server.stop(); await db.close() }
  }
}

/** Applies supabase-schema.sql once per process and URL, under an advisory lock so parallel files do not collide. */
export async function applySchema (url: string): Promise<void> {
  let done = applied.get(url)
  if (!done) {
    done = runSchema(url)
    applied.set(url, done)
    done.catch(() => applied.delete(url))
  }
  await done
}

/**
 * Runs the schema file unless this very file (by digest, kept as a comment on rtb_schema_version) is applied
 * already: re-running its DDL while other test files query the same database can deadlock with them. The
 * first file applies it while the others wait for the lock; they then find it applied and skip it.
 */
async function runSchema (url: string): Promise<void> {
  const sql = await readFile(SCHEMA_PATH, 'utf8')
  const digest = `test-schema-sha256:${createHash('sha256').update(sql).digest('hex')}`
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query('select pg_advisory_lock($1)', [SCHEMA_LOCK])
    try {
      const { rows } = await client.query<{ note: string | null }>(
        "select obj_description(to_regprocedure('public.rtb_schema_version()'), 'pg_proc') as note")
      if (rows[0]?.note === digest) return
      await client.query(sql)
      await client.query(`comment on function public.rtb_schema_version() is '${digest}'`)
    } finally {
      await client.query('select pg_advisory_unlock($1)', [SCHEMA_LOCK])
    }
  } finally {
    await client.end()
  }
}

/** A database of its own for a test: a fresh CREATE DATABASE on a real server, a fresh PGlite when embedded. */
export async function createScratchDatabase (): Promise<{ url: string; drop: () => Promise<void> }> {
  if (usingEmbeddedDatabase()) {
    const e = await startEmbedded()
    return { url: e.url, drop: e.stop }
  }
  const base = new URL(await getTestDatabaseUrl())
  const name = `rtb_scratch_${process.pid}_${randomBytes(4).toString('hex')}`
  await adminQuery(base, `create database ${name}`)
  const url = new URL(base)
  url.pathname = `/${name}`
  return { url: url.toString(), drop: () => adminQuery(base, `drop database if exists ${name} with (force)`) }
}

async function adminQuery (base: URL, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: base.toString() })
  await client.connect()
  try { await client.query(sql) } finally { await client.end() }
}

/** Deletes every session (events cascade) whose id starts with the prefix: tests scope their rows by prefix. */
export async function deleteSessions (url: string, idPrefix: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query("delete from public.sessions where id like $1 || '%'", [idPrefix])
  } finally {
    await client.end()
  }
}

/** A short random prefix so files sharing one database never see each other's sessions. */
export function uniquePrefix (label: string): string {
  return `${label}-${randomBytes(4).toString('hex')}-`
}

/** The same URL pointing at another port (e.g. a proxy in front of the server). */
export function withPort (url: string, port: number): string {
  const u = new URL(url)
  u.hostname = '127.0.0.1'
  u.port = String(port)
  return u.toString()
}
