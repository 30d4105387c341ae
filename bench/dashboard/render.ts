/**
 * Writes docs/grafana-dashboard.json from panels.ts and draws its panels, from a real scrape series of this server
 * under a small chat load, into docs/grafana-dashboard.png (no Grafana here: a tiny evaluator of the panels' PromQL,
 * SVG charts, and Chromium for the picture). Run: npx tsx bench/dashboard/render.ts [seconds]
 */
import { writeFileSync } from 'node:fs'
import { chromium } from 'playwright-core'
import { WebSocket } from 'ws'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../../src/config.js'
import { grafanaDashboard, PANELS, type Panel } from './panels.js'

const DOCS = new URL('../../docs/', import.meta.url)
const SECONDS = Number(process.argv[2] ?? 60)
const SCRAPE_MS = 1_000
/** The rate window, in scrapes ($__rate_interval). */
const WINDOW = 5

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Scrape { t: number; samples: Sample[] }

function parse (text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v
    out.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return out
}

// ── load ────────────────────────────────────────────────────────────────────────
const MESSAGES = ['Tell me something about the sea', 'How busy is the server CPU?', 'Show the profile of user alice', 'Hello there, what can you do?', 'What is the memory use of the system?']
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function chatWorker (url: string, id: number, until: number): Promise<void> {
  let after: number | undefined
  let round = 0
  while (Date.now() < until) {
    const ws = new WebSocket(`${url}/ws/session/dash-${id}${after === undefined ? '' : `?after=${after}`}`)
    let lastSeq = after ?? 0
    let waiting: ((f: Record<string, any>) => void) | undefined
    ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as Record<string, any>
      if (typeof f.seq === 'number') lastSeq = Math.max(lastSeq, f.seq)
      waiting?.(f)
    })
    ws.on('error', () => {})
    await new Promise((resolve) => { ws.once('open', resolve); ws.once('close', resolve) })
    if (ws.readyState !== WebSocket.OPEN) return
    const turns = 2 + (id + round) % 4
    for (let k = 0; k < turns && Date.now() < until; k++) {
      const cancel = (id * 7 + round * 3 + k) % 9 === 0
      const ended = new Promise<void>((resolve) => {
        waiting = (f) => {
          if (cancel && f.type === 'delta' && f.index === 3) ws.send(JSON.stringify({ type: 'cancel' }))
          if (f.type === 'assistant_message') resolve()
        }
      })
      ws.send(JSON.stringify({ type: 'user_message', content: MESSAGES[(id + k + round) % MESSAGES.length] }))
      await ended
      if ((id + k) % 5 === 0) ws.send('{oops')
      await pause(150 + ((id * 131 + k * 71) % 700))
    }
    round++
    after = lastSeq
    if (round % 3 === 0) ws.terminate()
    else ws.close(1000)
    await pause(300 + (id * 97 % 900))
  }
}

// ── PromQL (the forms panels.ts uses) ───────────────────────────────────────────
type Series = Map<string, Array<number | null>>

function groupKey (labels: Record<string, string>, by: string[]): string {
  return JSON.stringify(by.map((l) => labels[l] ?? ''))
}

function evaluate (expr: string, scrapes: Scrape[]): Array<{ labels: Record<string, string>; values: Array<number | null> }> {
  const hq = /^histogram_quantile\(([\d.]+), sum by \(le\) \(rate\((\w+)\[[^\]]+\]\)\)\)$/.exec(expr)
  if (hq) {
    const q = Number(hq[1])
    const values = scrapes.map((_, i) => {
      if (i < WINDOW) return null
      const byLe = new Map<number, number>()
      const rate = rates(hq[2], scrapes, i, [])
      for (const [leKey, v] of rate) byLe.set(Number(JSON.parse(leKey)[0] === '+Inf' ? Infinity : JSON.parse(leKey)[0]), v)
      return quantile(q, byLe)
    })
    return [{ labels: {}, values }]
  }
  const m = /^sum(?: by \(([^)]*)\))? ?\((rate\()?(\w+)(?:\[[^\]]+\]\))?\)$/.exec(expr)
  if (!m) throw new Error(`unsupported expression: ${expr}`)
  const by = m[1] ? m[1].split(',').map((s) => s.trim()) : []
  const isRate = Boolean(m[2])
  const series: Series = new Map()
  scrapes.forEach((s, i) => {
    const sums = isRate ? (i < WINDOW ? new Map<string, number>() : rates(m[3], scrapes, i, by)) : gauges(m[3], s, by)
    for (const [k, v] of sums) {
      if (!series.has(k)) series.set(k, scrapes.map(() => null))
      series.get(k)![i] = v
    }
  })
  return [...series].map(([k, values]) => ({ labels: Object.fromEntries(by.map((l, j) => [l, JSON.parse(k)[j] as string])), values }))
}

function gauges (name: string, s: Scrape, by: string[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const x of s.samples) if (x.name === name) out.set(groupKey(x.labels, by), (out.get(groupKey(x.labels, by)) ?? 0) + x.value)
  return out
}

/** Per-second increase over the last WINDOW scrapes, summed by `by` (`le` for buckets). */
function rates (name: string, scrapes: Scrape[], i: number, by: string[]): Map<string, number> {
  const group = name.endsWith('_bucket') && by.length === 0 ? ['le'] : by
  const now = gauges(name, scrapes[i], group)
  const then = gauges(name, scrapes[i - WINDOW], group)
  const dt = (scrapes[i].t - scrapes[i - WINDOW].t) / 1000
  const out = new Map<string, number>()
  for (const [k, v] of now) out.set(k, Math.max(0, v - (then.get(k) ?? 0)) / dt)
  return out
}

/** Prometheus' histogram_quantile: linear interpolation inside the bucket the rank falls in. */
function quantile (q: number, byLe: Map<number, number>): number | null {
  const buckets = [...byLe].sort((a, b) => a[0] - b[0])
  const total = buckets.at(-1)?.[1] ?? 0
  if (total <= 0) return null
  const rank = q * total
  let prevLe = 0
  let prevCount = 0
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe
      return prevLe + (le - prevLe) * ((rank - prevCount) / Math.max(count - prevCount, 1e-12))
    }
    prevLe = le
    prevCount = count
  }
  return prevLe
}

// ── drawing ─────────────────────────────────────────────────────────────────────
const COLORS = ['#73bf69', '#f2cc0c', '#5794f2', '#ff9830', '#f2495c', '#b877d9', '#8ab8ff', '#ca95e5', '#fade2a', '#96d98d']

function fmt (v: number, unit: string): string {
  if (unit === 's') return v === 0 ? '0' : v < 0.001 ? `${(v * 1e6).toFixed(0)} µs` : v < 1 ? `${(v * 1000).toFixed(v < 0.01 ? 1 : 0)} ms` : `${v.toFixed(1)} s`
  if (unit === 'percentunit') return `${(v * 100).toFixed(0)}%`
  const n = Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2).replace(/\.?0+$/, '') || '0'
  return unit === 'reqps' ? `${n}/s` : n
}

function chart (panel: Panel, scrapes: Scrape[], width: number, height: number): string {
  const all = panel.targets.flatMap((t) => evaluate(t.expr, scrapes).map((s) => ({
    name: t.legendFormat.replace(/\{\{(\w+)\}\}/g, (_, l: string) => s.labels[l] ?? ''),
    values: s.values
  })))
  // Like Grafana with "hide series with only zeros": label groups that never moved stay out of the legend.
  const moving = all.filter((l) => l.values.some((v) => v !== null && v > 0))
  const lines = (moving.length > 0 && panel.targets.some((t) => t.expr.includes(' by (')) ? moving : all).slice(0, 10)
  const pad = { l: 58, r: 12, t: 8, b: 22 }
  const legendH = 18 * Math.ceil(lines.length / 3)
  const w = width - pad.l - pad.r
  const h = height - pad.t - pad.b - legendH
  const max = Math.max(1e-9, ...lines.flatMap((l) => l.values.filter((v): v is number => v !== null))) * 1.1
  const x = (i: number) => pad.l + (i / Math.max(1, scrapes.length - 1)) * w
  const y = (v: number) => pad.t + h - (v / max) * h
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => `<line x1="${pad.l}" x2="${pad.l + w}" y1="${y(max * f)}" y2="${y(max * f)}" stroke="#2c3235"/><text x="${pad.l - 6}" y="${y(max * f) + 4}" text-anchor="end">${fmt(max * f, panel.unit)}</text>`).join('')
  const t0 = scrapes[0].t
  const ticks = scrapes.map((s, i) => ({ i, sec: Math.round((s.t - t0) / 1000) })).filter((p, i) => i % 10 === 0)
    .map((p) => `<text x="${x(p.i)}" y="${pad.t + h + 15}" text-anchor="middle">${String(Math.floor(p.sec / 60)).padStart(2, '0')}:${String(p.sec % 60).padStart(2, '0')}</text>`).join('')
  const paths = lines.map((l, k) => {
    let d = ''
    let pen = false
    l.values.forEach((v, i) => {
      if (v === null) { pen = false; return }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`
      pen = true
    })
    return `<path d="${d}" fill="none" stroke="${COLORS[k % COLORS.length]}" stroke-width="2"/>`
  }).join('')
  const legend = lines.map((l, k) => `<span><i style="background:${COLORS[k % COLORS.length]}"></i>${l.name}</span>`).join('')
  return `<svg width="${width}" height="${height - legendH}">${grid}${ticks}${paths}</svg><div class="legend">${legend}</div>`
}

function page (scrapes: Scrape[]): string {
  const col = 75
  const cells = PANELS.map((p) => `<div class="panel" style="grid-column: span ${p.w}"><h3>${p.title}</h3>${chart(p, scrapes, p.w * col - 18, 250)}</div>`).join('')
  return `<!doctype html><html><head><style>
  body { margin: 0; background: #111217; color: #ccccdc; font: 12px Inter, Helvetica, Arial, sans-serif; }
  header { padding: 12px 16px; font-size: 16px; color: #fff; border-bottom: 1px solid #2c3235; }
  header small { color: #8e8e9e; margin-left: 12px; font-size: 12px; }
  .grid { display: grid; grid-template-columns: repeat(24, ${col}px); gap: 0; padding: 8px; }
  .panel { background: #181b1f; border: 1px solid #2c3235; border-radius: 2px; margin: 4px; padding: 6px 4px 4px 6px; }
  h3 { margin: 0 0 4px; font-size: 13px; font-weight: 500; color: #d8d9da; }
  svg text { fill: #8e8e9e; font-size: 10px; }
  .legend { display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: 11px; padding-left: 58px; height: auto; }
  .legend i { display: inline-block; width: 12px; height: 3px; margin-right: 5px; vertical-align: middle; }
  </style></head><body><header>Realtime AI Backend <small>docs/grafana-dashboard.json, drawn from ${scrapes.length} scrapes of a live server (offline model, ${SECONDS} s of chat load; rates over ${WINDOW} s)</small></header>
  <div class="grid">${cells}</div></body></html>`
}

// ── main ────────────────────────────────────────────────────────────────────────
writeFileSync(new URL('grafana-dashboard.json', DOCS), `${JSON.stringify(grafanaDashboard(), null, 2)}\n`)
const app = await buildApp({
  config: testConfig({ OFFLINE_TOKEN_DELAY_MS: '6', DISCONNECT_GRACE_MS: '1500', SUMMARY_POLL_MS: '300', RATE_MESSAGES_PER_MIN: '100000', RATE_FRAMES_PER_MIN: '100000' })
})
const address = await app.listen({ host: '127.0.0.1', port: 0 })
const url = address.replace(/^http/, 'ws')
const scrapes: Scrape[] = []
const scrape = async () => { scrapes.push({ t: Date.now(), samples: parse((await app.inject({ url: '/metrics' })).body) }) }
await scrape()
const started = Date.now()
const until = started + SECONDS * 1000
const timer = setInterval(() => { void scrape() }, SCRAPE_MS)
// Sessions join over the first half and leave at the end: the gauges move.
const workers = Array.from({ length: 16 }, async (_, i) => {
  await pause(i * (SECONDS * 500 / 16))
  await chatWorker(url, i, until - (i % 4) * 4000)
})
await Promise.all(workers)
await pause(8_000)
clearInterval(timer)
await app.close()

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] })
const tab = await browser.newPage({ viewport: { width: 24 * 75 + 16, height: 900 }, deviceScaleFactor: 1 })
await tab.setContent(page(scrapes))
await tab.screenshot({ path: new URL('grafana-dashboard.png', DOCS).pathname, fullPage: true })
await browser.close()
process.stdout.write(`wrote docs/grafana-dashboard.json and docs/grafana-dashboard.png from ${scrapes.length} scrapes\n`)
