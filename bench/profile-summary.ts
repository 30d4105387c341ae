/** `tsx bench/profile-summary.ts <file.cpuprofile>…`: where a server's CPU went, by category and by function (self time). */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import { pathToFileURL } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

/** Ordered: the first pattern that matches a frame's URL (or name, for natives) names its category. */
const CATEGORIES: Array<[string, RegExp]> = [
  ['idle', /^\((idle|program)\)$/],
  ['GC', /^\(garbage collector\)$/],
  ['web streams (fetch body)', /node:internal\/webstreams/],
  ['undici fetch', /undici|node:internal\/deps\/undici/],
  ['openai SSE decoding', /openai\/(core\/streaming|internal\/decoders|internal\/utils\/bytes|src\/core\/streaming)/],
  ['openai other', /node_modules\/openai\//],
  ['ws (frames, sockets)', /node_modules\/ws\//],
  ['lean fetch', /src\/llm\/lean-fetch/],
  ['app model layer (src/llm)', /src\/llm\//],
  ['app chat layer (src/chat)', /src\/chat\//],
  ['app routes (src/routes)', /src\/routes\//],
  ['app store (src/store)', /src\/store\//],
  ['app other (src)', /\/src\//],
  ['bench relay', /bench\/relay/],
  ['fastify', /node_modules\/(fastify|@fastify|avvio|find-my-way|light-my-request)/],
  ['pino logging', /node_modules\/(pino|sonic-boom|thread-stream)/],
  ['zod', /node_modules\/zod\//],
  ['node net/streams', /node:(net|internal\/streams|internal\/stream_base_commons|stream|internal\/net|_http|internal\/http|http)/],
  ['node timers', /node:internal\/timers|node:timers/],
  ['node other', /^node:/],
  ['other deps', /node_modules/]
]

const NATIVE_NAMES: Array<[string, RegExp]> = [
  ['JSON', /^(parse|stringify)$/],
  ['microtasks/promises', /^(runMicrotasks|processTicksAndRejections|await|Promise|then|resolve)/]
]

function category (frame: ProfileNode['callFrame']): string {
  const key = frame.url || frame.functionName
  for (const [name, re] of CATEGORIES) if (re.test(key)) return name
  if (!frame.url) for (const [name, re] of NATIVE_NAMES) if (re.test(frame.functionName)) return name
  return frame.url ? 'other' : `native ${frame.functionName || '(anonymous)'}`
}

export interface ProfileSummary {
  file: string
  busyMs: number
  /** Set when cut to a window with a token count: busy µs per relayed token. */
  usPerToken?: number
  categories: Array<{ name: string, ms: number, pct: number, usPerToken?: number }>
  functions: Array<{ name: string, where: string, category: string, ms: number, pct: number }>
}

/** The measured window (monotonic µs) and the tokens relayed in it, written by the bench beside the profile. */
export interface ProfileWindow { startUs: number, endUs: number, tokens: number }

export function summarizeProfile (file: string, { top = 25, window }: { top?: number, window?: ProfileWindow } = {}): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  // Sample i is taken at startTime + the sum of timeDeltas[0..i], on the same monotonic clock as process.hrtime.
  let at = prof.startTime
  prof.samples.forEach((id, i) => {
    const delta = prof.timeDeltas[i] ?? 0
    at += delta
    if (window && (at < window.startUs || at > window.endUs)) return
    self.set(id, (self.get(id) ?? 0) + delta)
  })
  const cats = new Map<string, number>()
  const fns = new Map<string, { name: string, where: string, category: string, us: number }>()
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame
    const cat = category(frame)
    cats.set(cat, (cats.get(cat) ?? 0) + us)
    if (cat === 'idle') continue
    const where = `${frame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/')}:${frame.lineNumber + 1}`
    const key = `${frame.functionName}@${where}`
    const f = fns.get(key) ?? { name: frame.functionName || '(anonymous)', where, category: cat, us: 0 }
    f.us += us
    fns.set(key, f)
  }
  const busyUs = [...cats].filter(([c]) => c !== 'idle').reduce((s, [, us]) => s + us, 0)
  const pct = (us: number) => Math.round((1000 * us) / busyUs) / 10
  const perToken = (us: number) => (window && window.tokens > 0 ? Math.round((10 * us) / window.tokens) / 10 : undefined)
  return {
    file: basename(file),
    busyMs: Math.round(busyUs / 1000),
    usPerToken: perToken(busyUs),
    categories: [...cats].filter(([c]) => c !== 'idle').sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), pct: pct(us), usPerToken: perToken(us) })),
    functions: [...fns.values()].sort((a, b) => b.us - a.us).slice(0, top).map((f) => ({ name: f.name, where: f.where, category: f.category, ms: Math.round(f.us / 1000), pct: pct(f.us) }))
  }
}

/** A directory stands for its largest profile (the main thread's; tsx's loader thread writes a small one) and its window.json. */
const openProfile = (path: string): { file: string, window?: ProfileWindow } => {
  if (!statSync(path).isDirectory()) return { file: path }
  const files = readdirSync(path).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(path, f))
  const file = files.sort((a, b) => statSync(b).size - statSync(a).size)[0] ?? path
  const w = join(path, 'window.json')
  return existsSync(w) ? { file, window: JSON.parse(readFileSync(w, 'utf8')) as ProfileWindow } : { file }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const { file, window } of process.argv.slice(2).map(openProfile)) {
    const s = summarizeProfile(file, { window })
    const scope = window ? `measured window, ${window.tokens} tokens, ${s.usPerToken ?? '?'} µs/token on the JS thread` : 'whole process'
    const out = [`## ${file.split('/').slice(-2).join('/')}: ${s.busyMs} ms busy (${scope}; idle excluded)`, '', '| category | ms | % | µs/token |', '| --- | ---: | ---: | ---: |']
    for (const c of s.categories) out.push(`| ${c.name} | ${c.ms} | ${c.pct} | ${c.usPerToken ?? ''} |`)
    out.push('', '| function | where | category | self ms | % |', '| --- | --- | --- | ---: | ---: |')
    for (const f of s.functions) out.push(`| ${f.name} | ${f.where} | ${f.category} | ${f.ms} | ${f.pct} |`)
    process.stdout.write(`${out.join('\n')}\n\n`)
  }
}
