/** Readiness (GET /health/ready): false until start-up (store check, recovery) is done, and again from the first moment of a drain. */

export interface Readiness {
  /** True between start-up being done and a drain starting. */
  readonly ready: boolean
  readonly draining: boolean
  /** Start-up is done: the store answered and the sessions left by the previous run are recovered. */
  started (): void
  /** SIGTERM (or any shutdown) began: from now on the instance is not ready, for good. */
  drain (): void
}

export function createReadiness (): Readiness {
  let started = false
  let draining = false
  return {
    get ready () { return started && !draining },
    get draining () { return draining },
    started () { started = true },
    drain () { draining = true }
  }
}
