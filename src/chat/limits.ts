/** Rate limits for sockets and sessions, on rate-limiter-flexible's in-memory fixed windows. */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible'

/** Returns a taker: resolves to 0 when `key` may act now, else the milliseconds until it may. */
export function createRateLimit ({ perMinute }: { perMinute: number }): (key: string) => Promise<number> {
  const limiter = new RateLimiterMemory({ points: perMinute, duration: 60 })
  return async (key) => {
    try {
      await limiter.consume(key)
      return 0
    } catch (res) {
      // Stryker disable next-line ConditionalExpression: the in-memory limiter rejects only with a RateLimiterRes
      if (res instanceof RateLimiterRes) return Math.max(1, Math.ceil(res.msBeforeNext))
      throw res
    }
  }
}
