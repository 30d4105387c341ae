/** Reads Prometheus text exposition into `name{label="v",…}` → value, labels sorted, for before/after comparisons. */

export type Samples = Map<string, number>

const key = (name: string, labels: Record<string, string> = {}): string => {
  const parts = Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`)
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`
}

export function parseMetrics (text: string): Samples {
  const out: Samples = new Map()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v
    out.set(key(m[1], labels), Number(m[3]))
  }
  return out
}

/** A sample's value; 0 when absent. */
export function sample (samples: Samples, name: string, labels?: Record<string, string>): number {
  return samples.get(key(name, labels)) ?? 0
}

/** Every sample whose value changed from `before` to `after` (absent counts as 0), as `key → difference`. */
export function changes (before: Samples, after: Samples, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of new Set([...before.keys(), ...after.keys()])) {
    if (!k.startsWith(prefix)) continue
    const d = (after.get(k) ?? 0) - (before.get(k) ?? 0)
    if (d !== 0) out[k] = Math.round(d * 1e9) / 1e9
  }
  return out
}
