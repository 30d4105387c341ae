/** The identity port: who is calling, and the one error a credential check raises. */

/** A verified caller: a JWT's `sub`, or `apikey:<name>` for an API key. */
export interface Principal {
  readonly id: string
  /** Listed in AUTH_ADMINS: may read every session over REST. */
  readonly admin: boolean
  /** When the credential stops being valid (ms since epoch); null for an API key. */
  readonly expiresAt: number | null
}

/**
 * `invalid`: missing, malformed, expired or not ours (401 / close 4401). `unavailable`: it could not be checked
 * now (the JWKS endpoint is down): 503 / close 1013, never a refusal for good.
 */
export class AuthError extends Error {
  override name = 'AuthError'
  constructor (message: string, readonly kind: 'invalid' | 'unavailable', options?: { cause?: unknown }) {
    super(message, options)
  }
}

export interface Authenticator {
  /** False when no authentication is configured: callers skip every check (the server is open). */
  readonly enabled: boolean
  /** Verifies a presented credential (JWT or API key); rejects with an AuthError. */
  authenticate (credential: string | undefined): Promise<Principal>
}
