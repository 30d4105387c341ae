/** `npm run bench`: relay versus app over a ladder of sessions; prints the table, writes bench/results/, exits 1 on lost tokens. */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseOptions, USAGE } from './options.js'
import { ROOT } from './procs.js'
import { integrityFailures, renderAcceptTable, renderTable, renderTracingTable, renderVersusTable, writeResults } from './report.js'
import { runBenchmark } from './suite.js'

export { runBenchmark } from './suite.js'

async function main () {
  const argv = process.argv.slice(2)
  const opts = parseOptions(argv)
  if (opts.help) { process.stdout.write(`${USAGE}\n`); return 0 }
  const say = (line: string) => process.stdout.write(`${line}\n`)
  const command = ['npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' ')
  if (opts.cluster) return await clusterMain(opts, command, say)
  say(`${command}: targets ${opts.targets.join(', ')}, ladder ${opts.ladder.join(', ')}, ${opts.runs} run(s) each`)
  const report = await runBenchmark({ ...opts, log: say, ...(opts.profileDir ? { profileDir: resolve(ROOT, opts.profileDir) } : {}) })
  const files = writeResults({ report, dir: resolve(ROOT, opts.out), command })
  say(`\n${renderTable(report)}\n`)
  const accept = renderAcceptTable(report)
  if (accept) say(`Socket accept rate:\n${accept}\n`)
  const versus = renderVersusTable(report)
  const others = [...new Set(report.summary.versus.flatMap((p) => p.vs.map((x) => x.target)))]
    .map((t) => (t === 'app-base' && report.base ? `app-base (${report.base.rev} = ${report.base.commit})` : t))
  if (versus) say(`app against ${others.join(' and ')} (app ÷ other):\n${versus}\n`)
  const tracing = renderTracingTable(report)
  if (tracing) say(`What tracing costs per turn (app-otel − app):\n${tracing}\n`)
  say(files.markdown.split('\n').filter((l) => l.startsWith('Capacity') || l.startsWith('Integrity')).join('\n'))
  for (const v of report.summary.floor) if (!v.ok) say(`floor not met: ${v.check} (${v.detail})`)
  for (const v of report.summary.auth) say(`auth cost: ${v.check}: ${v.ok ? 'pass' : 'fail'} (${v.detail})`)
  for (const v of report.summary.base) say(`vs base: ${v.check}: ${v.ok ? 'pass' : 'fail'} (${v.detail})`)
  for (const v of report.summary.otel) say(`tracing: ${v.check}: ${v.ok ? 'pass' : 'fail'} (${v.detail})`)
  say(`\nwrote ${files.json} and ${files.md}`)
  const failures = integrityFailures(report)
  if (failures > 0) say(`FAILED: ${failures} lost, duplicated, reordered or mangled tokens, or failed runs`)
  return failures > 0 ? 1 : 0
}

async function clusterMain (opts: ReturnType<typeof parseOptions>, command: string, say: (line: string) => void): Promise<number> {
  const { runClusterBench, writeClusterResults } = await import('./cluster.js')
  say(`${command}: cluster mode, ladder ${opts.ladder.join(', ')}, ${opts.runs} run(s) each, ${opts.takeovers} takeovers, ${opts.restarts} rolling restarts`)
  const { markdown, json } = await runClusterBench({ ...opts, log: say })
  say(`\n${markdown}\n`)
  say(`wrote ${writeClusterResults({ markdown, json, command })}`)
  const rolling = (json as { rolling: { lost: number, duplicated: number, badTurns: number, conflicts: number } }).rolling
  return rolling.lost + rolling.duplicated + rolling.badTurns + rolling.conflicts > 0 ? 1 : 0
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then((code) => { process.exitCode = code }, (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`)
    process.exitCode = 2
  })
}
