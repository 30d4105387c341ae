/**
 * For the `app-otel` target: a local OTLP/HTTP trace receiver run by the bench process (node:http on 127.0.0.1:0). It
 * accepts POST /v1/traces, answers 200 `{}` at once (an empty ExportTraceServiceResponse: full success), and counts the
 * requests and spans received — proof that tracing really ran. The app exports with @opentelemetry/exporter-trace-otlp-http
 * (src/tracing/otel.ts): JSON bodies (`resourceSpans[].scopeSpans[].spans[]`), gzip when OTEL_EXPORTER_OTLP_COMPRESSION says so.
 * Protobuf bodies are answered too but only their requests are counted (`unparsed`).
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync, inflateSync } from 'node:zlib'

/** One export request: when it arrived (µs, `process.hrtime` — the clock of the load generator's `windowHrUs`) and its spans. */
export interface OtlpExport { atUs: number, spans: number, bytes: number }

export interface OtlpCounts { requests: number, spans: number, bytes: number, unparsed: number }

export interface OtlpReceiver {
  /** OTEL_EXPORTER_OTLP_ENDPOINT for the server (the exporter appends /v1/traces). */
  endpoint: string
  /** Totals since the receiver started. */
  counts: () => OtlpCounts
  /** Every export since the receiver started, in arrival order. */
  readonly exports: readonly OtlpExport[]
  close: () => Promise<void>
}

/** Spans in an OTLP/JSON ExportTraceServiceRequest; NaN when the body is not one. */
export function countSpans (body: string): number {
  try {
    const req = JSON.parse(body) as { resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: unknown[] }> }> }
    if (!Array.isArray(req.resourceSpans)) return NaN
    let n = 0
    for (const rs of req.resourceSpans) for (const ss of rs.scopeSpans ?? []) n += ss.spans?.length ?? 0
    return n
  } catch {
    return NaN
  }
}

/**
 * The app's BatchSpanProcessor exports at most 5 s (its default scheduled delay) after a span ends: with app-otel in the run,
 * app and app-otel pause this long after the warm-up (its spans leave before the window) and the server's CPU is measured this
 * long after each window (the spans of the last turns are paid for). One second of margin.
 */
export const EXPORT_TAIL_MS = 6000

const nowUs = () => Number(process.hrtime.bigint() / 1000n)

export async function startOtlpReceiver (): Promise<OtlpReceiver> {
  const exports: OtlpExport[] = []
  const counts: OtlpCounts = { requests: 0, spans: 0, bytes: 0, unparsed: 0 }
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url?.split('?')[0] !== '/v1/traces') { req.resume(); res.writeHead(404).end(); return }
    const atUs = nowUs()
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      // Answer first: the exporter should not wait on our counting.
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      let raw = Buffer.concat(chunks)
      const bytes = raw.length
      let spans = NaN
      try {
        const enc = String(req.headers['content-encoding'] ?? '').toLowerCase()
        if (enc === 'gzip') raw = gunzipSync(raw)
        else if (enc === 'deflate') raw = inflateSync(raw)
        if (String(req.headers['content-type'] ?? '').includes('json')) spans = countSpans(raw.toString('utf8'))
      } catch {}
      counts.requests++
      counts.bytes += bytes
      if (Number.isNaN(spans)) counts.unparsed++
      else counts.spans += spans
      exports.push({ atUs, spans: Number.isNaN(spans) ? 0 : spans, bytes })
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  server.unref()
  const { port } = server.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    exports,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/**
 * What one server exported: the exports from index `from` on; `spansInWindow` counts the spans that arrived within
 * [startUs, endUs], `spansFromWindow` those that arrived from startUs on (NaN without a window).
 */
export function exportsSince (receiver: OtlpReceiver, from: number, window?: [number, number]) {
  const xs = receiver.exports.slice(from)
  const count = (pick: (x: OtlpExport) => boolean) => xs.filter(pick).reduce((a, x) => a + x.spans, 0)
  return {
    requests: xs.length,
    spans: count(() => true),
    spansInWindow: window ? count((x) => x.atUs >= window[0] && x.atUs <= window[1]) : NaN,
    spansFromWindow: window ? count((x) => x.atUs >= window[0]) : NaN,
    bytes: xs.reduce((a, x) => a + x.bytes, 0)
  }
}
