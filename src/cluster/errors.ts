/** Redis (REDIS_URL) cannot be reached at start: the server stops with one line naming it. Apart from bus.ts so that a start without cluster mode loads nothing of ioredis. */
export class ClusterUnavailable extends Error {
  override name = 'ClusterUnavailable'
}
