/** The ports a message is admitted through: the per-user rate and daily token budget (DESIGN §10), the model slots (#13). */
import type { ErrorCode, ErrorFrame } from '../protocol.js'
import type { SessionDeps } from './session.js'

/** The port a token budget gives the chat core (src/quota/token-budget.ts implements it). */
export interface TurnBudget {
  /** `remaining` null: no limit, only counted. */
  check (principal: string): Promise<{ ok: true; remaining: number | null } | { ok: false; retryAfterMs: number }>
  record (principal: string, tokens: number): Promise<void>
}

/**
 * The port the model budget gives the chat core (src/quota/turn-slots.ts implements it): a turn takes a slot
 * before it calls the model and gives it back when it ends; over the limit it waits in a fair queue.
 */
export interface TurnSlotPort {
  /** Synchronous: `full` refuses the message before it is stored; `granted` false when `signal` aborted first. */
  acquire (opts: { key: string; onPosition?: (position: number) => void; signal: AbortSignal }):
  | { type: 'full'; retryAfterMs: number }
  | { type: 'waiting'; granted: Promise<boolean>; release: () => void }
}

/**
 * Resolves the tokens the owner's turn may spend (null: no limit; undefined: nothing is counted), or false when
 * the message was refused — the sender was told why through `refuse`.
 */
export async function admitOwner ({ owner, deps, refuse, sessionId }: {
  owner: string
  deps: Pick<SessionDeps, 'takeUserMessageToken' | 'budget' | 'logger'>
  refuse: (code: ErrorCode, message: string, extra?: Partial<ErrorFrame>) => void
  sessionId: string
}): Promise<number | null | undefined | false> {
  const { takeUserMessageToken, budget } = deps
  const waitMs = takeUserMessageToken ? await takeUserMessageToken(owner) : 0
  if (waitMs > 0) {
    refuse('rate_limited', `too many messages from this user; retry in ${Math.ceil(waitMs / 1000)} s`, { retryAfterMs: waitMs })
    return false
  }
  if (!budget) return undefined
  let verdict: Awaited<ReturnType<TurnBudget['check']>>
  try {
    verdict = await budget.check(owner)
  } catch (err) {
    deps.logger.warn({ err, sessionId }, 'could not read the token budget')
    refuse('store_unavailable', 'storage is unavailable to check the token budget; the message was not run, try again shortly')
    return false
  }
  if (!verdict.ok) {
    refuse('quota_exceeded', `the daily token budget is spent; it renews at 00:00 UTC (in ${Math.ceil(verdict.retryAfterMs / 60_000)} min)`, { retryAfterMs: verdict.retryAfterMs })
    return false
  }
  return verdict.remaining
}
