/** Load-generator process: receives one job from its parent over IPC, runs it, sends the result back, exits. */
import { request } from 'node:http'
import { runAccept, type AcceptJob, type AcceptResult } from './accept-run.js'
import { runIdle, type IdleJob, type IdleResult } from './idle-run.js'
import { runLoad, type LoadJob, type LoadResult } from './load-run.js'
import { nowMs } from './token-codec.js'

export type LoadgenJob =
  | ({ kind: 'load', upstreamUrl: string } & LoadJob)
  | ({ kind: 'idle' } & IdleJob)
  | ({ kind: 'accept' } & AcceptJob)

export interface ClockCheck {
  /** Upstream clock minus this process's clock, from the fastest of 30 round trips (ms). */
  offsetMs: number
  /** That round trip: the offset is known to ± rttMs / 2. */
  rttMs: number
}

export type LoadgenReply =
  | { type: 'result', kind: 'load', result: LoadResult, clock: ClockCheck }
  | { type: 'result', kind: 'idle', result: IdleResult }
  | { type: 'result', kind: 'accept', result: AcceptResult }
  | { type: 'failed', message: string }

const getText = (url: string) => new Promise<string>((resolve, reject) => {
  request(url, (res) => {
    let body = ''
    res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => resolve(body))
  }).on('error', reject).end()
})

/** Verifies that `performance.timeOrigin + performance.now()` agrees between this process and the upstream's. */
export async function checkClock (upstreamUrl: string): Promise<ClockCheck> {
  let best: ClockCheck = { offsetMs: NaN, rttMs: Infinity }
  for (let i = 0; i < 30; i++) {
    const t1 = nowMs()
    const t2 = Number(await getText(`${upstreamUrl}/clock`))
    const t3 = nowMs()
    if (t3 - t1 < best.rttMs) best = { offsetMs: t2 - (t1 + t3) / 2, rttMs: t3 - t1 }
  }
  return best
}

async function handle (job: LoadgenJob): Promise<LoadgenReply> {
  if (job.kind === 'idle') return { type: 'result', kind: 'idle', result: await runIdle(job) }
  if (job.kind === 'accept') return { type: 'result', kind: 'accept', result: await runAccept(job) }
  const clock = await checkClock(job.upstreamUrl)
  return { type: 'result', kind: 'load', result: await runLoad(job), clock }
}

process.once('message', (job: LoadgenJob) => {
  handle(job)
    .catch((err: Error): LoadgenReply => ({ type: 'failed', message: err.stack ?? err.message }))
    .then((reply) => { process.send?.(reply, () => process.exit(0)) })
})
process.send?.({ type: 'ready' })
