/** REST calls the page makes (DESIGN §5, §10); errors come back as { error: { code, message } }. */

export class ApiError extends Error {
  constructor (status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

let tokenOf = () => null
let onUnauthenticated = () => {}

/**
 * useCredentials({ token, unauthenticated }): `token()` gives the bearer for every /api/* call (null: none);
 * `unauthenticated()` runs when the server answers 401 to one of them.
 */
export function useCredentials ({ token, unauthenticated }) {
  tokenOf = token
  onUnauthenticated = unauthenticated
}

async function getJson (path, { token = tokenOf() } = {}) {
  const headers = { accept: 'application/json' }
  if (token && path.startsWith('/api/')) headers.authorization = `Bearer ${token}`
  const res = await fetch(path, { headers })
  const body = await res.json().catch(() => null)
  if (!res.ok) {
    const err = new ApiError(res.status, body?.error?.code ?? 'http_error', body?.error?.message ?? `HTTP ${res.status}`)
    // A stale credential refused mid-use; a token still being checked (me with its own token) is the caller's business.
    if (res.status === 401 && token === tokenOf()) onUnauthenticated(err)
    throw err
  }
  return body
}

export const api = {
  health: () => getJson('/health'),
  /** How the page signs in; a server without the route has auth off. */
  authConfig: () => getJson('/auth/config').catch((err) => {
    if (err instanceof ApiError && err.status === 404) return { enabled: false, mode: 'none' }
    throw err
  }),
  /** { principal, admin, usage } for `token` (default: the current one). */
  me: (token) => getJson('/api/me', token === undefined ? {} : { token }),
  /** Most recent first → { sessions, nextBefore }; pass `nextBefore` as `before` for the next page (null: no more). */
  sessions: ({ limit = 30, before } = {}) => {
    const q = new URLSearchParams({ limit: String(limit) })
    if (before) q.set('before', before)
    return getJson(`/api/sessions?${q}`).then((b) => ({ sessions: b.sessions ?? [], nextBefore: b.nextBefore ?? null }))
  },
  /** The session record, or null when the session does not exist yet. */
  session: (id) => getJson(`/api/session/${encodeURIComponent(id)}`).catch((err) => {
    if (err instanceof ApiError && err.status === 404) return null
    throw err
  })
}
