/** Tokens per principal per UTC day, counted durably in the store, against USER_DAILY_TOKEN_BUDGET when it is set. */
import type { Logger } from '../logger.js'
import type { SessionRepository } from '../store/types.js'

/** `remaining` null: no budget (usage is still counted). */
export type BudgetCheck = { ok: true; remaining: number | null } | { ok: false; retryAfterMs: number }

export interface TokenBudget {
  /** USER_DAILY_TOKEN_BUDGET; null when unset. */
  readonly limit: number | null
  /** What is left today, or how long until the next UTC midnight when nothing is. No store read without a limit. */
  check (principal: string): Promise<BudgetCheck>
  /** Adds a turn's tokens to today's count. Never rejects: a store failure is logged (the count is then short). */
  record (principal: string, tokens: number): Promise<void>
  /** Tokens counted today (GET /api/me). */
  usedToday (principal: string): Promise<number>
}

const DAY_MS = 86_400_000

/** The UTC day of a time, as the store keys it. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10)
const msToMidnight = (ms: number): number => DAY_MS - (ms % DAY_MS)

export function createTokenBudget ({ store, limit, logger, now = Date.now }: {
  store: Pick<SessionRepository, 'addUsage' | 'getUsage'>
  limit: number | null
  logger: Logger
  now?: () => number
}): TokenBudget {
  /**
   * Usage writes still on their way to the store, by principal. A turn's tokens are recorded after its
   * assistant_message goes out, so a client that answers at once would otherwise be checked against the count
   * before that turn (an over-budget message admitted): reads of a principal wait for its writes first.
   */
  const writing = new Map<string, Promise<void>>()
  const usedToday = async (principal: string): Promise<number> => {
    await writing.get(principal)
    return await store.getUsage({ principal, day: utcDay(now()) })
  }
  return {
    limit,
    usedToday,
    async check (principal) {
      if (limit === null) return { ok: true, remaining: null }
      // Read afresh each time: every instance and every restart sees the same count.
      const used = await usedToday(principal)
      return used >= limit ? { ok: false, retryAfterMs: msToMidnight(now()) } : { ok: true, remaining: limit - used }
    },
    async record (principal, tokens) {
      if (!(tokens > 0)) return
      const day = utcDay(now())
      const write = (async () => {
        try {
          await store.addUsage({ principal, day, tokens: Math.ceil(tokens) })
        } catch (err) {
          logger.error({ err, principal, tokens }, 'could not record token usage')
        }
      })()
      // Chained behind the principal's earlier writes, so a read waits for all of them.
      const done = Promise.all([writing.get(principal), write]).then(() => {})
      writing.set(principal, done)
      await done
      // Stryker disable next-line ConditionalExpression: a settled write left in the map costs a read nothing but memory
      if (writing.get(principal) === done) writing.delete(principal)
    }
  }
}
