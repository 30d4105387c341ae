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
 * A URL with the value of `access_token` replaced, for log lines and error messages. Everything after the path
 * counts as query — `#` and `;` included, since a request line never carries a fragment and the query parser
 * reads past them — and names are compared decoded, as the parser reads them (`?access%5Ftoken=…` is the same
 * parameter); a name that does not decode has its value hidden too.
 */
export function redactUrl (url: string): string {
  const start = url.search(/[?;#]/)
  if (start < 0) return url
  const query = url.slice(start + 1).split(/([&;#?])/).map((part, i) => {
    // Stryker disable next-line ConditionalExpression,ArithmeticOperator: a separator holds no '=', so the next check hands it back too
    if (i % 2 === 1) return part // a separator
    const eq = part.indexOf('=')
    // Stryker disable next-line EqualityOperator: at 0 the name is '', which is not access_token either
    if (eq < 0) return part
    const rawName = part.slice(0, eq)
    const name = queryName(rawName)
    return name === undefined || name.trim().toLowerCase() === 'access_token' ? `${rawName}=[redacted]` : part
  })
  return `${url.slice(0, start + 1)}${query.join('')}`
}

/** A query parameter's name as the parser reads it (+ is a space); undefined when it does not decode. */
function queryName (raw: string): string | undefined {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '))
  } catch { /* not a name the parser can read */ }
  return undefined
}
