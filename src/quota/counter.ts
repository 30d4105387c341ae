/** Counts what a key holds at once (sockets per user) against a cap. */

export interface HeldCounter {
  /** Takes one for `key`; false (nothing taken) when it already holds `limit`. */
  acquire (key: string): boolean
  release (key: string): void
  held (key: string): number
  /** The most any one key holds now (/health: how close the busiest key is to the cap). */
  busiest (): number
}

export function createHeldCounter (limit: number): HeldCounter {
  const counts = new Map<string, number>()
  return {
    acquire (key) {
      const n = counts.get(key) ?? 0
      if (n >= limit) return false
      counts.set(key, n + 1)
      return true
    },
    release (key) {
      const n = counts.get(key) ?? 0
      // Stryker disable next-line EqualityOperator: a key kept at 0 reads as 0 too (only memory would tell)
      if (n <= 1) counts.delete(key)
      else counts.set(key, n - 1)
    },
    held: (key) => counts.get(key) ?? 0,
    busiest () {
      let most = 0
      // Stryker disable next-line EqualityOperator: taking an equal count changes nothing
      for (const n of counts.values()) if (n > most) most = n
      return most
    }
  }
}
