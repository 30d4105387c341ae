/** Small statistics helpers for the benchmark: percentiles, medians, least-squares slope. */

export interface Dist {
  count: number
  p50: number
  p95: number
  p99: number
  max: number
}

/** Nearest-rank percentiles of a sample (sorted in place when it is a typed array). */
export function distribution (sample: ArrayLike<number>): Dist {
  const n = sample.length
  if (n === 0) return { count: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN }
  const sorted = Float64Array.from(sample).sort()
  const at = (q: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]
  return { count: n, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[n - 1] }
}

/** Median of finite values (NaN when there is none). */
export function median (values: number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/** Least-squares slope of y over x (NaN with fewer than two points). */
export function slope (points: Array<{ x: number, y: number }>): number {
  if (points.length < 2) return NaN
  const n = points.length
  const mx = points.reduce((s, p) => s + p.x, 0) / n
  const my = points.reduce((s, p) => s + p.y, 0) / n
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0)
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0)
  return sxx === 0 ? NaN : sxy / sxx
}

/** Growable Float64 sample without per-push allocation. */
export function createSample (initial = 4096) {
  let buf = new Float64Array(initial)
  let n = 0
  return {
    push (v: number) {
      if (n === buf.length) { const next = new Float64Array(buf.length * 2); next.set(buf); buf = next }
      buf[n++] = v
    },
    values: () => buf.subarray(0, n),
    get length () { return n }
  }
}
export type Sample = ReturnType<typeof createSample>
