/**
 * A local JWKS issuer for auth tests: a node:http server on 127.0.0.1:0 serving `{ keys: [...] }` of ES256 public keys
 * (kid and alg set), and signing tokens with their private halves. Tests change the published set (rotation), count
 * fetches, and close it (JWKS endpoint down).
 *
 *   const issuer = await startJwksIssuer()              // one key published, kid 'k1'
 *   const token = await issuer.sign({ sub: 'alice' })     // ES256, kid k1, exp now+300 s
 *   const kid = await issuer.rotate()                    // a new key, published alongside the old ones
 *   issuer.fetches                                      // GETs of the JWKS so far
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'

export interface IssuerKey { kid: string; privateKey: CryptoKey; jwk: JWK }

export interface SignOptions {
  /** Key to sign with (default: the newest published key); may be an unpublished one from `newKey`. */
  key?: IssuerKey
  /** Overrides the header's kid (e.g. a foreign key posing under a published kid). */
  kid?: string
  /** Seconds from now; null: no exp claim. Default 300 (unless the claims carry their own exp). */
  expiresIn?: number | null
}

export interface JwksIssuer {
  /** The JWKS URL: AUTH_JWKS_URL. */
  readonly url: string
  /** GET requests served so far. */
  readonly fetches: number
  /** When set, every GET answers this status with an empty body instead of the set (an endpoint that is up but failing). */
  failWith: number | undefined
  /** The keys currently published, in order. */
  keys: IssuerKey[]
  /** A fresh ES256 key pair with this kid (not published). */
  newKey (kid: string): Promise<IssuerKey>
  /** Publishes a new key (kid `k<n>`) alongside the current ones; returns it. */
  rotate (): Promise<IssuerKey>
  /** Signs an ES256 token: `claims` as given (sub, aud, iss, nbf, …), iat now, exp per options. */
  sign (claims: JWTPayload, opts?: SignOptions): Promise<string>
  close (): Promise<void>
}

let counter = 0

export async function newEs256Key (kid: string): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }
  return { kid, privateKey, jwk }
}

export async function signEs256 (claims: JWTPayload, key: IssuerKey, opts: Omit<SignOptions, 'key'> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? key.kid, typ: 'JWT' }).setIssuedAt(now)
  // An `exp` given in the claims is kept as is.
  const expiresIn = opts.expiresIn === undefined ? 300 : opts.expiresIn
  if (expiresIn !== null && claims.exp === undefined) jwt.setExpirationTime(now + expiresIn)
  return await jwt.sign(key.privateKey)
}

export async function startJwksIssuer (): Promise<JwksIssuer> {
  let fetches = 0
  const issuer: JwksIssuer & { server?: Server } = {
    url: '',
    get fetches () { return fetches },
    failWith: undefined,
    keys: [],
    newKey: (kid) => newEs256Key(kid),
    async rotate () {
      const key = await newEs256Key(`k${++counter}`)
      issuer.keys = [...issuer.keys, key]
      return key
    },
    async sign (claims, opts = {}) {
      const key = opts.key ?? issuer.keys.at(-1)
      if (!key) throw new Error('no key published')
      return await signEs256(claims, key, opts)
    },
    async close () {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    }
  }
  const server = createServer((req, res) => {
    if (req.method !== 'GET') { res.writeHead(405).end(); return }
    fetches++
    if (issuer.failWith !== undefined) { res.writeHead(issuer.failWith).end(); return }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    res.end(JSON.stringify({ keys: issuer.keys.map((k) => k.jwk) }))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  Object.defineProperty(issuer, 'url', { value: `http://127.0.0.1:${port}/.well-known/jwks.json` })
  await issuer.rotate()
  return issuer
}

/** An unsecured token (`alg: none`, empty signature), built by hand: jose will not make one. */
export function unsecuredToken (claims: JWTPayload): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`
}

/** A URL where nothing listens: a port taken from the OS and released. */
export async function deadUrl (): Promise<string> {
  const probe = createServer()
  probe.listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  probe.close()
  await once(probe, 'close')
  return `http://127.0.0.1:${port}/.well-known/jwks.json`
}

/** An HS256 token with a shared secret (AUTH_JWT_SECRET); `expiresIn` as in SignOptions. */
export async function signHs256 (claims: JWTPayload, secret: string, { expiresIn = 300 }: { expiresIn?: number | null } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt(now)
  if (expiresIn !== null) jwt.setExpirationTime(now + expiresIn)
  return await jwt.sign(new TextEncoder().encode(secret))
}
