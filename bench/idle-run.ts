/** Idle-connections test, inside the load-generator process: open many idle sessions in steps and read the server's RSS. */
import { mintSessionTokens, type TokenSigner } from './auth-issuer.js'
import { memInfo } from './proc-stats.js'
import { rampSessions } from './load-run.js'
import { createTally, type BenchSession } from './session-client.js'
import { slope } from './stats.js'

export interface IdleJob {
  url: string
  sockets: number
  steps: number
  rampPerSec: number
  prefix: string
  serverPid: number
  /** app-auth: every socket presents its own token (its own user), minted before it opens. */
  auth?: TokenSigner
}

export interface IdleResult {
  sockets: { requested: number, open: number, refused: number, answeredPing: number }
  baseRssBytes: number
  points: Array<{ sockets: number, rssBytes: number }>
  /** Least-squares slope of RSS over open sockets: the marginal cost of one idle session. */
  bytesPerSocket: number
  /** (RSS at the end − base) / sockets, fixed costs included. */
  bytesPerSocketTotal: number
  errors: Record<string, number>
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Samples RSS until it stops moving (two readings within 0.5 %) or 3 s pass. */
async function settledRss (pid: number): Promise<number> {
  let last = memInfo(pid).rssBytes
  let calm = 0
  for (let i = 0; i < 15 && calm < 2; i++) {
    await pause(200)
    const now = memInfo(pid).rssBytes
    calm = Math.abs(now - last) <= last * 0.005 ? calm + 1 : 0
    last = now
  }
  return last
}

export async function runIdle (job: IdleJob): Promise<IdleResult> {
  const tally = createTally()
  // Warm the connect path (code loading, JIT, pools) so the base excludes one-time costs.
  const tokensFor = async (prefix: string, count: number) => job.auth ? await mintSessionTokens(job.auth, prefix, count) : undefined
  const warm = await rampSessions({ url: job.url, prefix: `${job.prefix}w`, count: 100, rampPerSec: 1000, tally, tokens: await tokensFor(`${job.prefix}w`, 100) })
  await Promise.all(warm.map((s) => s.close()))
  const baseRssBytes = await settledRss(job.serverPid)

  const open: BenchSession[] = []
  const points: IdleResult['points'] = []
  const perStep = Math.ceil(job.sockets / job.steps)
  for (let step = 0; open.length + tally.refused < job.sockets && step < job.steps; step++) {
    const count = Math.min(perStep, job.sockets - open.length - tally.refused)
    const prefix = `${job.prefix}-${step}`
    open.push(...await rampSessions({ url: job.url, prefix, count, rampPerSec: job.rampPerSec, tally, tokens: await tokensFor(prefix, count) }))
    points.push({ sockets: open.length, rssBytes: await settledRss(job.serverPid) })
  }

  // Every idle socket must still be served: ping each and count the pongs.
  const before = tally.pongs
  for (const s of open) s.ws.send('{"type":"ping"}')
  const deadline = Date.now() + 10_000
  while (tally.pongs - before < open.length && Date.now() < deadline) await pause(50)
  const answeredPing = tally.pongs - before

  await Promise.all(open.map((s) => s.close()))
  const last = points.at(-1)
  return {
    sockets: { requested: job.sockets, open: open.length, refused: tally.refused, answeredPing },
    baseRssBytes,
    points,
    // Over the steps only when there are several, so the first step's one-time growth is left out.
    bytesPerSocket: slope([...(points.length > 1 ? [] : [{ x: 0, y: baseRssBytes }]), ...points.map((p) => ({ x: p.sockets, y: p.rssBytes }))]),
    bytesPerSocketTotal: last && last.sockets > 0 ? (last.rssBytes - baseRssBytes) / last.sockets : NaN,
    errors: tally.errors
  }
}
