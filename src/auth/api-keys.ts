/** API keys (API_KEYS): a presented secret matched against every configured key in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto'

// Stryker disable next-line StringLiteral: '' is Node's default encoding, utf8 itself
const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

/**
 * Returns a matcher: the key's name for a presented secret, else undefined. Secrets are compared as SHA-256
 * digests (equal length, so timingSafeEqual applies) and every key is compared, so neither the length of a
 * secret nor which key came close shows in the time taken.
 */
export function createApiKeyMatcher (keys: ReadonlyArray<{ name: string; secret: string }>): (presented: string) => string | undefined {
  const known = keys.map((k) => ({ name: k.name, digest: digest(k.secret) }))
  return (presented) => {
    const candidate = digest(presented)
    let match: string | undefined
    for (const key of known) {
      if (timingSafeEqual(candidate, key.digest)) match = key.name
    }
    return match
  }
}
