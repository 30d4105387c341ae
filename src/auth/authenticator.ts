/** Builds the Authenticator from config: API keys first (cheap, constant time), then JWTs. */
import type { Config } from '../config.js'
import { createApiKeyMatcher } from './api-keys.js'
import { createJwtVerifier } from './jwt.js'
import { AuthError, type Authenticator, type Principal } from './types.js'

/** Longer than any real JWT or key: refused before any parsing. */
const MAX_CREDENTIAL_CHARS = 8_192
const MAX_SUB_CHARS = 256
const CONTROL_OR_LONE_SURROGATE = /[\u0000-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

type AuthConfig = Pick<Config, 'authEnabled' | 'apiKeys' | 'authAdmins' | 'AUTH_JWT_SECRET' | 'AUTH_JWKS_URL' |
  'AUTH_JWT_ISSUER' | 'AUTH_JWT_AUDIENCE' | 'AUTH_JWKS_COOLDOWN_MS'>

export function createAuthenticator (config: AuthConfig): Authenticator {
  if (!config.authEnabled) {
    return { enabled: false, authenticate: async () => { throw new AuthError('authentication is not configured', 'invalid') } }
  }
  const admins = new Set(config.authAdmins)
  const matchKey = createApiKeyMatcher(config.apiKeys)
  const jwtConfigured = Boolean(config.AUTH_JWT_SECRET ?? config.AUTH_JWKS_URL)
  const verifyJwt = jwtConfigured
    ? createJwtVerifier({
      secret: config.AUTH_JWT_SECRET,
      jwksUrl: config.AUTH_JWKS_URL,
      issuer: config.AUTH_JWT_ISSUER,
      audience: config.AUTH_JWT_AUDIENCE,
      jwksCooldownMs: config.AUTH_JWKS_COOLDOWN_MS
    })
    : undefined
  const principal = (id: string, expiresAt: number | null): Principal => ({ id, admin: admins.has(id), expiresAt })

  return {
    enabled: true,
    async authenticate (credential) {
      if (credential === undefined || credential === '') throw new AuthError('a credential is required (Authorization: Bearer, or access_token for sockets)', 'invalid')
      if (credential.length > MAX_CREDENTIAL_CHARS) throw new AuthError('credential too long', 'invalid')
      // Stryker disable next-line ConditionalExpression,EqualityOperator: matching against no keys finds none either; the test saves the hashing
      const keyName = config.apiKeys.length > 0 ? matchKey(credential) : undefined
      if (keyName !== undefined) return principal(`apikey:${keyName}`, null)
      if (!verifyJwt || !JWT_SHAPE.test(credential)) throw new AuthError('invalid credential', 'invalid')
      const { sub, exp } = await verifyJwt(credential)
      // A token may not pass itself off as an API key's principal, nor carry an owner too long to store.
      // Nor control characters (Postgres refuses a NUL in text: the owner could not even be stored), nor lone surrogates.
      if (sub === '' || sub.length > MAX_SUB_CHARS || sub.startsWith('apikey:') || CONTROL_OR_LONE_SURROGATE.test(sub)) {
        throw new AuthError('token subject not accepted', 'invalid')
      }
      return principal(sub, exp * 1000)
    }
  }
}
