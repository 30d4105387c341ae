/** REST calls the page makes (DESIGN §5); errors come back as { error: { code, message } }. */

export class ApiError extends Error {
  constructor (status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

async function getJson (path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } })
  const body = await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, body?.error?.code ?? 'http_error', body?.error?.message ?? `HTTP ${res.status}`)
  return body
}

export const api = {
  health: () => getJson('/health'),
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
