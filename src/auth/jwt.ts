/** JWT verification with jose: HS256 with a shared secret, or asymmetric keys from a JWKS that is cached and refetched on an unknown kid. */
import { createRemoteJWKSet, customFetch, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose'
import { AuthError } from './types.js'

export interface JwtVerifierOptions {
  /** AUTH_JWT_SECRET: HS256. */
  secret?: string
  /** AUTH_JWKS_URL: ES256/RS256/EdDSA… keys, selected by `kid`. */
  jwksUrl?: string
  issuer?: string
  audience?: string
  /** Wait after a JWKS fetch before an unknown kid may refetch it (jose's cooldownDuration). */
  jwksCooldownMs: number
}

export interface VerifiedJwt { sub: string; exp: number }

/** Every asymmetric algorithm a JWKS key may use; HS* never comes from a JWKS. */
const ASYMMETRIC = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519']
/** jose's own errors that mean "the JWKS could not be had", not "the token is bad". */
// Stryker disable next-line Regex: jose's messages begin with these words; the anchor only saves a scan
const JWKS_FETCH_FAILED = /^(Expected 200 OK from the JSON Web Key Set|Failed to parse the JSON Web Key Set)/

export function createJwtVerifier (opts: JwtVerifierOptions): (token: string) => Promise<VerifiedJwt> {
  const secret = opts.secret === undefined ? undefined : new TextEncoder().encode(opts.secret)
  const jwks = opts.jwksUrl === undefined
    ? undefined
    : createRemoteJWKSet(new URL(opts.jwksUrl), { cooldownDuration: opts.jwksCooldownMs, timeoutDuration: 5_000, [customFetch]: boundedFetch })
  const checks: JWTVerifyOptions = {
    requiredClaims: ['exp', 'sub'],
    ...(opts.issuer ? { issuer: opts.issuer } : {}),
    ...(opts.audience ? { audience: opts.audience } : {})
  }
  const hs256: JWTVerifyOptions = { ...checks, algorithms: ['HS256'] }

  return async (token) => {
    let alg: string | undefined
    try {
      alg = decodeProtectedHeader(token).alg
    } catch {
      throw new AuthError('credential is not a valid JWT', 'invalid')
    }
    let payload: JWTPayload
    try {
      // The key decides the algorithm, never the token: an HS256 token is checked against the secret only, and
      // refused when only a JWKS is configured (the classic RS256 → HS256 confusion); `none` matches neither list.
      ({ payload } = alg === 'HS256' && secret
        ? await jwtVerify(token, secret, hs256)
        : jwks
          ? await jwtVerify(token, jwks, { ...checks, algorithms: ASYMMETRIC })
          : await jwtVerify(token, secret!, hs256))
    } catch (err) {
      throw classify(err)
    }
    // jose checks that `sub` is present, not that it is a string: `{"sub": 42}` must be refused, not crash the caller.
    if (typeof payload.sub !== 'string') throw new AuthError('token subject is not a string', 'invalid')
    return { sub: payload.sub, exp: payload.exp! }
  }
}

/** A key set is a few kilobytes; a larger answer is refused while it is read, not buffered whole. */
const MAX_JWKS_BYTES = 1024 * 1024

/**
 * fetch for the JWKS with its body read under a size bound (and under jose's timeout signal, which plain
 * `response.json()` outlived: a 400 MB answer was read for 11 s past the 5 s timeout into 1.4 GB of memory).
 */
async function boundedFetch (url: string, init: RequestInit): Promise<Response> {
  const response = await fetch(url, init)
  // Stryker disable next-line ConditionalExpression: read as empty instead, a body-less answer fails as unavailable all the same
  if (!response.body) return response
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let bytes = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    bytes += value.byteLength
    if (bytes > MAX_JWKS_BYTES) {
      await reader.cancel()
      throw new errors.JOSEError('Failed to parse the JSON Web Key Set HTTP response: larger than 1 MiB')
    }
    chunks.push(value)
  }
  return new Response(Buffer.concat(chunks), { status: response.status, headers: response.headers })
}

function classify (err: unknown): AuthError {
  if (err instanceof errors.JWTExpired) return new AuthError('token expired', 'invalid', { cause: err })
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid ||
    !(err instanceof errors.JOSEError) || JWKS_FETCH_FAILED.test(err.message)) {
    return new AuthError('the signing keys (AUTH_JWKS_URL) could not be fetched', 'unavailable', { cause: err })
  }
  if (err instanceof errors.JWTClaimValidationFailed) return new AuthError(`token refused: ${err.message}`, 'invalid', { cause: err })
  if (err instanceof errors.JWKSNoMatchingKey) return new AuthError('token signed with an unknown key', 'invalid', { cause: err })
  return new AuthError('invalid token', 'invalid', { cause: err })
}
