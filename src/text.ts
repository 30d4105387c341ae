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
