/** The /api/sessions page cursor: `<startedAt>~<id>` of the last session of a page (ids never contain `~`). */

/** startedAt as the stores return it (toISOString), then `~` and a session id. */
export const SESSION_CURSOR = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z~[A-Za-z0-9_-]{1,64}$/

export const encodeCursor = (s: { startedAt: string; id: string }): string => `${s.startedAt}~${s.id}`

/** A cursor from `nextBefore`, or a bare time (the sessions that started before it). Validated by the route schema. */
export function decodeCursor (before: string): { before: string; beforeId?: string } {
  const at = before.indexOf('~')
  if (at === -1) return { before: new Date(before).toISOString() }
  return { before: before.slice(0, at), beforeId: before.slice(at + 1) }
}
