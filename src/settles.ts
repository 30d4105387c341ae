/** Bounded waiting: did a promise settle within a time limit (or before an abort)? */

/** True when `promise` settles (either way) within `ms`; false on timeout or when `signal` aborts first. */
export async function settlesWithin (promise: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const giveUp = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false)
    onAbort = () => resolve(false)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise.then(() => true, () => true), giveUp])
  } finally {
    clearTimeout(timer)
    if (onAbort) signal?.removeEventListener('abort', onAbort)
  }
}
