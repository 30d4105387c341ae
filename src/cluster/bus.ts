/**
 * The cluster's message bus (DESIGN §11): each instance reads one Redis pub/sub channel of its own and publishes
 * to the others' channels. Redis carries live traffic only (nothing durable). Pub/sub keeps the order of the
 * messages one connection publishes to one channel, which is all the ordering cluster mode needs: every frame
 * of a session leaves its owner on one connection.
 */
import { randomUUID } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from '../logger.js'
import { settlesWithin } from '../settles.js'
import { ClusterUnavailable, InstanceIdInUse } from './errors.js'

export interface ClusterBus {
  /** Both connections are ready: publishes can leave and this instance's channel is subscribed. */
  readonly up: boolean
  /** Publishes to another instance's channel; false when Redis is not reachable now (nothing is queued). */
  publish (instanceId: string, message: string): boolean
  /** Called on every message published to this instance's channel. */
  onMessage (fn: (message: string) => void): void
  /** Called when the bus goes down (a connection lost) and when it is up again. */
  onState (fn: (up: boolean) => void): void
  close (): Promise<void>
}


export const channelOf = (instanceId: string): string => `rtb:instance:${instanceId}`

/**
 * Two live processes under one INSTANCE_ID would both read its channel and take each other's leases (the store
 * grants an instance its own sessions again). Each process claims its id in a key it renews; a claim lapses
 * `claimMs` after its process stopped renewing it (killed: the restart under the same id waits that long at most).
 */
const claimOf = (instanceId: string): string => `rtb:instance-claim:${instanceId}`
/** Renews the claim when it is this process's (or lapsed); 0 when another process holds it. */
const RENEW_CLAIM = "local v = redis.call('get', KEYS[1]) if v == false or v == ARGV[1] then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end return 0"
/** At close, how long Redis may take to answer the goodbye before the connections are just dropped. */
const CLOSE_WAIT_MS = 1_000
const DROP_CLAIM = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

/** Connects both connections (publish, subscribe) or rejects with ClusterUnavailable within `connectTimeoutMs`. */
export async function createRedisBus ({ url, instanceId, logger, connectTimeoutMs = 5_000, claimMs = 3_000 }: { url: string; instanceId: string; logger: Logger; connectTimeoutMs?: number; claimMs?: number }): Promise<ClusterBus> {
  const options: RedisOptions = {
    lazyConnect: true,
    connectTimeout: connectTimeoutMs,
    // Nothing waits for Redis: a frame that cannot leave now is dropped and its link closed (the client resumes).
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
    connectionName: `rtb:${instanceId}`
  }
  const pub = new Redis(url, options)
  const sub = new Redis(url, { ...options, autoResubscribe: true })
  const messageFns: Array<(message: string) => void> = []
  const stateFns: Array<(up: boolean) => void> = []
  let up = false
  let closing = false
  let lastError = ''
  // A Redis that stops answering without closing (paused, cut off by the network) leaves both connections 'ready':
  // the claim's renewal, unanswered for claimMs, takes the bus down until it is answered again.
  let stalled = false
  let answeredAt = Date.now()
  const setState = (): void => {
    const now = !closing && !stalled && pub.status === 'ready' && sub.status === 'ready'
    if (now === up) return
    up = now
    if (now) logger.info('cluster bus (Redis) is up')
    else if (!closing) logger.warn({ reason: lastError || 'connection closed' }, 'cluster bus (Redis) is down: sessions keep working on their owners; cross-instance sockets must reconnect')
    for (const fn of stateFns) fn(now)
  }
  // A new connection answers afresh: a stall is judged from its first renewal on.
  pub.on('ready', () => { answeredAt = Date.now() })
  for (const conn of [pub, sub]) {
    // ioredis emits an error per failed attempt while it reconnects: remembered, never thrown.
    conn.on('error', (err: Error) => { lastError = err.message })
    conn.on('ready', setState)
    conn.on('close', setState)
    conn.on('end', setState)
  }
  // A throw here would be thrown inside ioredis's parser callback, that is, out of the process: logged instead.
  sub.on('message', (_channel: string, message: string) => {
    for (const fn of messageFns) {
      try { fn(message) } catch (err) { logger.error({ err }, 'cluster: a bus message could not be handled') }
    }
  })
  const claim = randomUUID()
  const renewClaim = async (): Promise<boolean> => await pub.eval(RENEW_CLAIM, 1, claimOf(instanceId), claim, String(claimMs)) === 1
  const start = async (): Promise<void> => {
    await Promise.all([pub.connect(), sub.connect()])
    // A process killed a moment ago still holds the claim for up to claimMs: waited out, then refused.
    const deadline = Date.now() + claimMs + 500
    while (!await renewClaim()) {
      if (Date.now() > deadline) throw new InstanceIdInUse(`another running process uses INSTANCE_ID=${instanceId}: give each instance its own`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await sub.subscribe(channelOf(instanceId))
  }
  let startTimer: NodeJS.Timeout | undefined
  try {
    // connectTimeout covers the TCP connection only: a server that accepts it and never answers (a paused Redis,
    // something else on that port) would hold the start until Fastify gives up with a stack trace.
    await Promise.race([start(), new Promise<never>((_resolve, reject) => {
      startTimer = setTimeout(() => { reject(new Error(`no answer within ${connectTimeoutMs} ms`)) }, connectTimeoutMs + claimMs + 500)
    })])
  } catch (err) {
    closing = true
    pub.disconnect()
    sub.disconnect()
    if (err instanceof InstanceIdInUse) throw err
    throw new ClusterUnavailable(`Redis at REDIS_URL is not reachable: ${lastError || (err as Error).message}`, { cause: err })
  } finally {
    clearTimeout(startTimer)
  }
  answeredAt = Date.now()
  let claimLost = false
  const claimTimer = setInterval(() => {
    if (closing || pub.status !== 'ready') return
    if (!stalled && Date.now() - answeredAt > claimMs) {
      stalled = true
      lastError = `no answer from Redis for ${claimMs} ms`
      setState()
    }
    renewClaim().then((mine) => {
      answeredAt = Date.now()
      if (stalled) {
        stalled = false
        setState()
      }
      if (mine === !claimLost) return
      claimLost = !mine
      if (claimLost) logger.error('another process took this INSTANCE_ID while this one could not renew it: both read one channel; stop one of them')
    }, (err: unknown) => { lastError = (err as Error).message })
  }, Math.max(50, Math.floor(claimMs / 3)))
  claimTimer.unref()
  setState()
  return {
    get up () { return up },
    publish (target, message) {
      if (!up) return false
      pub.publish(channelOf(target), message).catch((err: unknown) => { lastError = (err as Error).message })
      return true
    },
    onMessage (fn) { messageFns.push(fn) },
    onState (fn) { stateFns.push(fn) },
    async close () {
      closing = true
      setState()
      clearInterval(claimTimer)
      const bye = (async () => {
        // Let go at once: a restart under the same INSTANCE_ID need not wait for the claim to lapse.
        await pub.eval(DROP_CLAIM, 1, claimOf(instanceId), claim).catch(() => {})
        await Promise.allSettled([pub.quit(), sub.quit()])
      })()
      // A Redis that does not answer (paused, cut off) must not hold the shutdown until its timer exits 1.
      if (!await settlesWithin(bye, CLOSE_WAIT_MS)) {
        pub.disconnect()
        sub.disconnect()
      }
    }
  }
}
