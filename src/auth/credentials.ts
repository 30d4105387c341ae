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

/** A URL with the value of `access_token` replaced, for log lines. */
export function redactUrl (url: string): string {
  return url.replace(/([?&]access_token=)[^&#]*/gi, '$1[redacted]')
}
