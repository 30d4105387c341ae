/**
 * Credentials for the `app-auth` target: a local JWKS issuer (node:http on 127.0.0.1:0, one throwaway ES256 key) run
 * by the bench process, and the tokens the load generator mints from that key — one per session, each with its own
 * `sub`, so every session has its own owner (as with real users) and no per-user limit couples them.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose'

/** Claims checked by the app too (AUTH_JWT_ISSUER / AUTH_JWT_AUDIENCE), as with Supabase. */
export const BENCH_ISSUER = 'https://bench.invalid/auth/v1'
export const BENCH_AUDIENCE = 'authenticated'
const KID = 'bench-es256'
/** Tokens expire this long after the issuer started: well past any run, so no socket is closed at expiry. */
const TOKEN_TTL_S = 24 * 3600

/** What a load generator needs to mint tokens (sent to it over IPC: the key lives only as long as the run). */
export interface TokenSigner {
  privateJwk: JWK
  kid: string
  issuer: string
  audience: string
  /** exp of every token (s since epoch). */
  expiresAt: number
}

export interface AuthIssuer {
  /** AUTH_JWKS_URL for the server. */
  jwksUrl: string
  signer: TokenSigner
  /** GETs of the JWKS so far (one per server start is expected: the app caches the set). */
  readonly fetches: number
  close: () => Promise<void>
}

export async function startAuthIssuer (): Promise<AuthIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const body = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: KID, alg: 'ES256', use: 'sig' }] })
  let fetches = 0
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/.well-known/jwks.json') { res.writeHead(404).end(); return }
    fetches++
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=600' }).end(body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  server.unref()
  const { port } = server.address() as AddressInfo
  return {
    jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    signer: {
      privateJwk: await exportJWK(privateKey),
      kid: KID,
      issuer: BENCH_ISSUER,
      audience: BENCH_AUDIENCE,
      expiresAt: Math.floor(Date.now() / 1000) + TOKEN_TTL_S
    },
    get fetches () { return fetches },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** The app's env for JWKS verification against `issuer`. */
export const authEnv = (jwksUrl: string): Record<string, string> => ({
  AUTH_JWKS_URL: jwksUrl,
  AUTH_JWT_ISSUER: BENCH_ISSUER,
  AUTH_JWT_AUDIENCE: BENCH_AUDIENCE
})

/** The principal of session `<prefix>-<i>`. */
export const benchUser = (sessionId: string) => `user-${sessionId}`

/**
 * Tokens for sessions `<prefix>-0` … `<prefix>-<count-1>` (index i: `sub` = benchUser of that session id). Minted
 * before any measured window: signing costs the load generator, not the server.
 */
export async function mintSessionTokens (signer: TokenSigner, prefix: string, count: number): Promise<string[]> {
  const key = await importJWK(signer.privateJwk, 'ES256')
  const header = { alg: 'ES256', kid: signer.kid, typ: 'JWT' }
  const iat = Math.floor(Date.now() / 1000)
  const tokens: string[] = []
  for (let i = 0; i < count; i++) {
    tokens.push(await new SignJWT({ sub: benchUser(`${prefix}-${i}`) }).setProtectedHeader(header).setIssuer(signer.issuer)
      .setAudience(signer.audience).setIssuedAt(iat).setExpirationTime(signer.expiresAt).sign(key))
  }
  return tokens
}
