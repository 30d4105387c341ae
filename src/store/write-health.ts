/** The EventWriter's view of store health: healthy/lastError for /health, rate-limited warnings, the retry delay. */
import type { Logger } from '../logger.js'

const WARN_EVERY_MS = 5_000

export class WriteHealth {
  healthy = true
  lastError: string | null = null
  private failures = 0
  private failingSince = 0
  private lastWarnAt = -Infinity

  constructor (private readonly logger: Logger) {}

  succeeded (): void {
    if (this.healthy) return
    this.logger.info({ failures: this.failures, outageMs: Date.now() - this.failingSince }, 'store writes recovered')
    this.healthy = true
    this.lastError = null
    this.failures = 0
  }

  failed (err: unknown, pending: number): void {
    if (this.healthy) this.failingSince = Date.now()
    this.healthy = false
    this.lastError = err instanceof Error ? err.message : String(err)
    this.failures++
    this.warn({ err, pending, failures: this.failures }, 'store write failed; retrying')
  }

  /** At most one warning per WARN_EVERY_MS, so an outage does not flood the log. */
  warn (obj: Record<string, unknown>, msg: string): void {
    const now = Date.now()
    if (now - this.lastWarnAt < WARN_EVERY_MS) return
    this.lastWarnAt = now
    this.logger.warn(obj, msg)
  }
}

/** Exponential backoff with jitter: between half and all of min × 2^(attempt−1), capped at max. */
export function retryDelay (attempt: number, minMs: number, maxMs: number): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30))
  return cap / 2 + Math.random() * cap / 2
}
