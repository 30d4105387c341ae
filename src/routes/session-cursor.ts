/** The /api/sessions page cursor: `<startedAt>~<id>` of the last session of a page (ids never contain `~`). */

/** startedAt as the stores return it (toISOString), then `~` and a session id. */
export const SESSION_CURSOR = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z~[A-Za-z0-9_-]{1,64}$/

export const encodeCursor = (s: { startedAt: string; id: string }): string => `${s.startedAt}~${s.id}`

/**
 * A cursor from `nextBefore`, or a bare time (the sessions that started before it); the route schema checks
 * the shape, this the date itself: undefined for one that does not exist (2026-13-01, year 0; in a cursor also 02-30).
 */
export function decodeCursor (before: string): { before: string; beforeId?: string } | undefined {
  const at = before.indexOf('~')
  const time = at === -1 ? before : before.slice(0, at)
  const ms = Date.parse(time)
  if (Number.isNaN(ms)) return undefined
  // Year 0 parses in JavaScript but not in Postgres (there is no year 0 there): years 1–9999 only.
  const year = new Date(ms).getUTCFullYear()
  if (year < 1 || year > 9999) return undefined
  const iso = new Date(ms).toISOString()
  // Date.parse rolls an impossible day over (02-30 → 03-02); a cursor we wrote always reads back unchanged.
  if (at !== -1 && iso !== time) return undefined
  return at === -1 ? { before: iso } : { before: iso, beforeId: before.slice(at + 1) }
}
