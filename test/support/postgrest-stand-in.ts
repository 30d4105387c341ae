/**
 * A node:http stand-in for PostgREST's documented `POST /rest/v1/rpc/<fn>` behaviour, executing the
 * call on a real Postgres. Only what supabase-js rpc() sends; no business rules of its own.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import { fromPgError, pgrst, statusForSqlState, type PostgrestErrorBody } from './postgrest-errors.js'
import { isRetryablePgError } from '../../src/store/pg-errors.js'

export interface RecordedRpc {
  fn: string
  headers: Record<string, string | string[] | undefined>
  body: unknown
  status: number
}

export interface PostgrestStandIn {
  /** What SUPABASE_URL would be: requests go to `${url}/rest/v1/rpc/<fn>`. */
  readonly url: string
  readonly requests: RecordedRpc[]
  close (): Promise<void>
}

export interface StandInOptions {
  databaseUrl: string
  /** The only key accepted in `apikey` and `Authorization: Bearer`. */
  serviceKey: string
  /** Exposed schemas (db-schemas); the first is the default. */
  schemas?: string[]
  poolMax?: number
}

interface FnInfo {
  volatility: 'i' | 's' | 'v'
  returnsSet: boolean
  returnType: string
  returnKind: string
  /** Input arguments in declaration order; the last `defaults` of them may be omitted. */
  args: Array<{ name: string; type: string }>
  defaults: number
}

class HttpError extends Error {
  constructor (readonly status: number, readonly body: PostgrestErrorBody) { super(body.message) }
}

const FIND_FUNCTIONS = `
  select p.provolatile as volatility, p.proretset as "returnsSet", format_type(p.prorettype, null) as "returnType",
         t.typtype as "returnKind", p.pronargdefaults as defaults,
         coalesce(p.proargnames, '{}') as names, coalesce(p.proargmodes::text[], '{}') as modes,
         array(select format_type(x, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) as x) as types
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_type t on t.oid = p.prorettype
  where n.nspname = $1 and p.proname = $2 and p.prokind = 'f'`

export async function startPostgrestStandIn (opts: StandInOptions): Promise<PostgrestStandIn> {
  const schemas = opts.schemas ?? ['public']
  const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: opts.poolMax ?? 4, connectionTimeoutMillis: 3_000 })
  pool.on('error', () => {}) // an idle connection dropped: the next request reconnects
  const requests: RecordedRpc[] = []

  const server = createServer((req, res) => {
    const record: RecordedRpc = { fn: '', headers: req.headers, body: undefined, status: 0 }
    requests.push(record)
    handle(req, record).then(
      ({ status, body }) => { record.status = status; reply(res, status, body) },
      (err: unknown) => {
        const e = err instanceof HttpError ? err : new HttpError(500, { code: 'PGRST000', message: String(err), details: null, hint: null })
        record.status = e.status
        reply(res, e.status, e.body)
      })
  })

  async function handle (req: IncomingMessage, record: RecordedRpc): Promise<{ status: number; body: string | null }> {
    const raw = await readBody(req)
    const url = new URL(req.url ?? '/', 'http://stand-in')
    const match = /^\/rest\/v1\/rpc\/([^/]+)$/.exec(url.pathname)
    const fn = match ? decodeURIComponent(match[1]) : ''
    record.fn = fn
    record.body = safeJson(raw)
    if (!authorised(req)) throw new HttpError(401, pgrst.badJwt())
    if (!match) throw new HttpError(404, pgrst.unknownPath(url.pathname))
    if (req.method !== 'POST') throw new HttpError(405, { code: 'PGRST101', message: 'This stand-in only answers POST /rpc', details: null, hint: null })
    const schema = header(req, 'content-profile') ?? schemas[0]
    if (!schemas.includes(schema)) throw new HttpError(406, pgrst.badSchema(schemas))
    const args = parseArgs(raw)
    return await call(schema, fn, args)
  }

  function authorised (req: IncomingMessage): boolean {
    const bearer = /^Bearer (.+)$/i.exec(header(req, 'authorization') ?? '')?.[1]
    return header(req, 'apikey') === opts.serviceKey && (bearer === undefined || bearer === opts.serviceKey)
  }

  async function call (schema: string, fn: string, args: Record<string, unknown>): Promise<{ status: number; body: string | null }> {
    const client = await pool.connect().catch((err: unknown) => { throw new HttpError(503, pgrst.cannotConnect(String(err))) })
    let broken = false
    try {
      const info = await resolve(client, schema, fn, Object.keys(args))
      // Only the arguments sent are passed, so omitted ones take their SQL defaults.
      info.args = info.args.filter((a) => a.name in args)
      const readOnly = info.volatility !== 'v' // documented: POST runs stable/immutable functions READ ONLY
      await client.query(`begin isolation level read committed ${readOnly ? 'read only' : 'read write'}`)
      try {
        const { rows } = await client.query<{ body: string | null }>(callSql(schema, fn, info), [JSON.stringify(args)])
        await client.query('commit')
        if (info.returnType === 'void') return { status: 204, body: null }
        return { status: 200, body: rows[0]?.body ?? 'null' }
      } catch (err) {
        await client.query('rollback').catch(() => { broken = true })
        throw err
      }
    } catch (err) {
      if (err instanceof HttpError) throw err
      const code = (err as { code?: unknown }).code
      if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) {
        broken = true // the connection itself failed
        throw new HttpError(503, pgrst.cannotConnect(String(err)))
      }
      if (isRetryablePgError(err)) broken = true
      throw new HttpError(statusForSqlState(code, true), fromPgError(err as object))
    } finally {
      client.release(broken)
    }
  }

  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await pool.end()
    }
  }
}

/** Picks the overload whose parameter names fit the body's keys (all required ones given, no unknown key). */
async function resolve (client: pg.PoolClient, schema: string, fn: string, keys: string[]): Promise<FnInfo> {
  const { rows } = await client.query<{ volatility: FnInfo['volatility']; returnsSet: boolean; returnType: string; returnKind: string; defaults: number; names: string[]; modes: string[]; types: string[] }>(FIND_FUNCTIONS, [schema, fn])
  const candidates = rows.map((r): FnInfo => ({
    volatility: r.volatility,
    returnsSet: r.returnsSet,
    returnType: r.returnType,
    returnKind: r.returnKind,
    defaults: r.defaults,
    args: r.types.map((type, i) => ({ name: r.names[i] ?? '', type, mode: r.modes[i] ?? 'i' }))
      .filter((a) => a.mode === 'i' || a.mode === 'b' || a.mode === 'v')
      .map(({ name, type }) => ({ name, type }))
  })).filter((f) => {
    const names = f.args.map((a) => a.name)
    const required = names.slice(0, names.length - f.defaults)
    return keys.every((k) => names.includes(k)) && required.every((n) => keys.includes(n))
  })
  if (candidates.length === 0) throw new HttpError(404, pgrst.notFound(schema, fn, [...keys].sort()))
  if (candidates.length > 1) throw new HttpError(300, pgrst.ambiguous(schema, fn))
  return candidates[0]
}

/** Like PostgREST: arguments come from json_to_record over the body, so Postgres does every conversion. */
function callSql (schema: string, fn: string, info: FnInfo): string {
  const qualified = `${ident(schema)}.${ident(fn)}`
  const named = info.args.map((a) => `${ident(a.name)} => _.${ident(a.name)}`).join(', ')
  const source = info.args.length === 0
    ? '(select $1::json) as _'
    : `json_to_record($1::json) as _(${info.args.map((a) => `${ident(a.name)} ${a.type}`).join(', ')})`
  if (info.returnsSet || info.returnKind === 'c') {
    const agg = info.returnsSet ? "coalesce(json_agg(_r), '[]')" : 'to_json(_r)'
    return `select ${agg}::text as body from ${source}, lateral ${qualified}(${named}) as _r`
  }
  return `select to_json(${qualified}(${named}))::text as body from ${source}`
}

function parseArgs (raw: string): Record<string, unknown> {
  if (raw.trim() === '') return {}
  const parsed = safeJson(raw)
  if (parsed === undefined) throw new HttpError(400, pgrst.invalidBody('body is not valid JSON'))
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(400, pgrst.invalidBody('rpc arguments must be a JSON object'))
  }
  return parsed as Record<string, unknown>
}

function reply (res: ServerResponse, status: number, body: string | PostgrestErrorBody | null): void {
  if (body === null) { res.writeHead(status).end(); return }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
  res.end(typeof body === 'string' ? body : JSON.stringify(body))
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function header (req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

function safeJson (raw: string): unknown {
  try { return raw === '' ? undefined : JSON.parse(raw) } catch { return undefined }
}

function ident (name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}
