/** Who may read a session over REST (DESIGN §10): the rules, apart from the routes that apply them. */
import type { Principal } from './types.js'

/** With auth on, a session is visible to its owner and to admins; another's answers 404, as if it did not exist. */
export const mayRead = (record: { owner: string | null }, principal: Principal | null): boolean =>
  principal === null || principal.admin || record.owner === principal.id

/** Whose sessions a listing shows: only admins (or anyone on an open server) choose; everyone else sees their own. */
export const listedOwner = (principal: Principal | null, requested: string | undefined): string | undefined =>
  principal && !principal.admin ? principal.id : requested
