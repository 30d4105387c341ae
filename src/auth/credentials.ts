/** Where a request presents its credential: `Authorization: Bearer …`, or `access_token` in a socket's query. */
import type { IncomingHttpHeaders } from 'node:http'

/** The token of an `Authorization: Bearer <token>` header; undefined when absent or another scheme. */
export function bearerToken (headers: IncomingHttpHeaders): string | undefined {
  const value = headers.authorization
  if (typeof value !== 'string') return undefined
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(value)
  return match?.[1]
}

/** A socket's credential: the header (servers, wscat -H) wins over the query parameter (browsers). */
export function socketCredential (headers: IncomingHttpHeaders, query: { access_token?: unknown }): string | undefined {
  const fromHeader = bearerToken(headers)
  if (fromHeader !== undefined) return fromHeader
  return typeof query.access_token === 'string' && query.access_token !== '' ? query.access_token : undefined
}

/**
 * A URL with the value of `access_token` replaced, for log lines. Names are compared decoded, as the query parser
 * reads them: `?access%5Ftoken=…` is the same parameter; a name that does not decode has its value hidden too.
 */
export function redactUrl (url: string): string {
  const start = url.indexOf('?')
  if (start < 0) return url
  const hash = url.indexOf('#', start)
  const end = hash < 0 ? url.length : hash
  const query = url.slice(start + 1, end).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    if (eq < 0) return pair
    const rawName = pair.slice(0, eq)
    let name: string | undefined
    try { name = decodeURIComponent(rawName.replace(/\+/g, ' ')) } catch { name = undefined }
    return name === undefined || name.toLowerCase() === 'access_token' ? `${rawName}=[redacted]` : pair
  })
  return `${url.slice(0, start + 1)}${query.join('&')}${url.slice(end)}`
}
