/** Redis (REDIS_URL) cannot be reached at start: the server stops with one line naming it. Apart from bus.ts so that a start without cluster mode loads nothing of ioredis. */
export class ClusterUnavailable extends Error {
  override name = 'ClusterUnavailable'
}

/** Another running process already uses this INSTANCE_ID on the cluster's Redis: the server stops with one line naming it. */
export class InstanceIdInUse extends ClusterUnavailable {
  override name = 'InstanceIdInUse'
}
