/** Text hygiene shared by the protocol boundary and the SQL stores. */

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/**
 * The string with every lone UTF-16 surrogate replaced by U+FFFD (String.prototype.toWellFormed, ES2024).
 * JSON can carry one (`"\ud800"`), JavaScript keeps it, but it is not Unicode text: Postgres refuses it.
 */
export function wellFormed (text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD')
}

/**
 * The first `max` UTF-16 units of `text` and `mark` when it is longer — one unit fewer when `max` would cut a
 * surrogate pair (an emoji) in two, which would leave a lone surrogate behind.
 */
export function clip (text: string, max: number, mark = '…'): string {
  if (text.length <= max) return text
  const last = text.charCodeAt(max - 1)
  return `${text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max)}${mark}`
}
