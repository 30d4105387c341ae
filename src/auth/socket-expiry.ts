/** Closes a socket when its credential expires, unless an `auth` frame replaced it in time. */

/** setTimeout fires at once past 2^31−1 ms: longer waits are taken in steps. */
const MAX_TIMER_MS = 2_147_483_647

export interface ExpiryWatch {
  /** Watches a (new) expiry time in ms since epoch; null: the credential never expires. */
  set (expiresAt: number | null): void
  stop (): void
}

export function watchExpiry (onExpired: () => void, now: () => number = Date.now): ExpiryWatch {
  let timer: NodeJS.Timeout | undefined
  let deadline: number | null = null
  const arm = (): void => {
    clearTimeout(timer)
    timer = undefined
    if (deadline === null) return
    const left = deadline - now()
    if (left <= 0) { deadline = null; onExpired(); return }
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS))
    timer.unref()
  }
  return {
    set (expiresAt) { deadline = expiresAt; arm() },
    stop () { deadline = null; clearTimeout(timer); timer = undefined }
  }
}
