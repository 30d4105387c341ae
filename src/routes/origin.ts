/** WebSocket origin policy: browsers must come from an allowed origin; clients that send none (wscat, servers) pass. */

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1'])

export function isOriginAllowed ({ origin, host, allowed }: { origin: string | undefined; host: string | undefined; allowed: string[] }): boolean {
  if (origin === undefined) return true
  if (allowed.includes('*')) return true
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false
  }
  if (allowed.length > 0) return allowed.includes(url.origin)
  // Default: the server's own origin, and pages served from localhost during development.
  return url.host === host || LOCAL_HOSTS.has(url.hostname)
}
