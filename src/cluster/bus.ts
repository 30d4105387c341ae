/**
 * The cluster's message bus (DESIGN §11): each instance reads one Redis pub/sub channel of its own and publishes
 * to the others' channels. Redis carries live traffic only (nothing durable). Pub/sub keeps the order of the
 * messages one connection publishes to one channel, which is all the ordering cluster mode needs: every frame
 * of a session leaves its owner on one connection.
 */
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from '../logger.js'
import { ClusterUnavailable } from './errors.js'

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

/** Connects both connections (publish, subscribe) or rejects with ClusterUnavailable within `connectTimeoutMs`. */
export async function createRedisBus ({ url, instanceId, logger, connectTimeoutMs = 5_000 }: { url: string; instanceId: string; logger: Logger; connectTimeoutMs?: number }): Promise<ClusterBus> {
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
  const setState = (): void => {
    const now = !closing && pub.status === 'ready' && sub.status === 'ready'
    if (now === up) return
    up = now
    if (now) logger.info('cluster bus (Redis) is up')
    else if (!closing) logger.warn({ reason: lastError || 'connection closed' }, 'cluster bus (Redis) is down: sessions keep working on their owners; cross-instance sockets must reconnect')
    for (const fn of stateFns) fn(now)
  }
  for (const conn of [pub, sub]) {
    // ioredis emits an error per failed attempt while it reconnects: remembered, never thrown.
    conn.on('error', (err: Error) => { lastError = err.message })
    conn.on('ready', setState)
    conn.on('close', setState)
    conn.on('end', setState)
  }
  sub.on('message', (_channel: string, message: string) => { for (const fn of messageFns) fn(message) })
  try {
    await Promise.all([pub.connect(), sub.connect()])
    await sub.subscribe(channelOf(instanceId))
  } catch (err) {
    closing = true
    pub.disconnect()
    sub.disconnect()
    throw new ClusterUnavailable(`Redis at REDIS_URL is not reachable: ${lastError || (err as Error).message}`, { cause: err })
  }
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
      await Promise.allSettled([pub.quit(), sub.quit()])
    }
  }
}
