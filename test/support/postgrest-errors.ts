/** PostgREST's documented error body and SQLSTATE → HTTP status table (references/errors), for the stand-in. */

export interface PostgrestErrorBody {
  code: string
  message: string
  details: string | null
  hint: string | null
}

const PREFIX_STATUS: Array<[string, number]> = [
  ['08', 503], ['09', 500], ['0L', 403], ['0P', 403], ['25', 500], ['28', 403], ['2D', 500], ['38', 500],
  ['39', 500], ['3B', 500], ['40', 500], ['53', 503], ['54', 500], ['55', 500], ['57', 500], ['58', 500],
  ['F0', 500], ['HV', 500], ['P0', 500], ['XX', 500]
]
const EXACT_STATUS: Record<string, number> = {
  23503: 409, 23505: 409, 25006: 405, 53400: 500, P0001: 400, 42883: 404, '42P01': 404, '42P17': 500
}

/** HTTP status PostgREST answers for a Postgres error code. */
export function statusForSqlState (code: string, authenticated: boolean): number {
  if (code in EXACT_STATUS) return EXACT_STATUS[code]
  if (code === '42501') return authenticated ? 403 : 401
  for (const [prefix, status] of PREFIX_STATUS) if (code.startsWith(prefix)) return status
  return 400
}

/** A node-postgres DatabaseError as PostgREST forwards it. */
export function fromPgError (err: { code?: string; message?: string; detail?: string; hint?: string }): PostgrestErrorBody {
  return { code: err.code ?? 'XX000', message: err.message ?? 'unknown error', details: err.detail ?? null, hint: err.hint ?? null }
}

export const pgrst = {
  cannotConnect: (why: string): PostgrestErrorBody => ({
    code: 'PGRST000',
    message: 'Could not connect with the database due to an incorrect db-uri or due to the PostgreSQL service not running.',
    details: why,
    hint: null
  }),
  invalidBody: (why: string): PostgrestErrorBody => ({ code: 'PGRST102', message: 'Empty or invalid json', details: why, hint: null }),
  badSchema: (schemas: string[]): PostgrestErrorBody => ({
    code: 'PGRST106', message: `The schema must be one of the following: ${schemas.join(', ')}`, details: null, hint: null
  }),
  notFound: (schema: string, fn: string, keys: string[]): PostgrestErrorBody => ({
    code: 'PGRST202',
    message: `Could not find the function ${schema}.${fn}(${keys.join(', ')}) in the schema cache`,
    details: `Searched for the function ${schema}.${fn} with parameters ${keys.join(', ') || '(none)'} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.`,
    hint: null
  }),
  ambiguous: (schema: string, fn: string): PostgrestErrorBody => ({
    code: 'PGRST203',
    message: `Could not choose the best candidate function between several overloads of ${schema}.${fn}`,
    details: null,
    hint: 'Try renaming the parameters or the function itself in the database so function overloading can be resolved'
  }),
  badJwt: (): PostgrestErrorBody => ({ code: 'PGRST301', message: 'Invalid API key or JWT', details: null, hint: null }),
  unknownPath: (path: string): PostgrestErrorBody => ({
    code: 'PGRST125', message: `Invalid path specified in request URL: ${path}`, details: null, hint: null
  })
}
