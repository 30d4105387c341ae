/** createJwtVerifier on its own: every algorithm a JWKS may carry, each refusal's words and cause, and the JWKS fetch's bounds. */
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { errors, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createJwtVerifier } from '../../src/auth/jwt.js'
import { authError as refusal } from '../support/auth-refusal.js'
import { newEs256Key, signEs256, signHs256 } from '../support/jwks-issuer.js'

const SECRET = 'hs256-shared-secret-0123456789-abcdefghij'
const servers: Server[] = []
afterAll(() => { for (const s of servers) { s.closeAllConnections(); s.close() } })

/** A JWKS endpoint answering whatever `handler` writes. */
async function endpoint (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler)
  servers.push(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`
}
const jwksAt = (url: string) => createJwtVerifier({ jwksUrl: url, jwksCooldownMs: 0 })


describe('every asymmetric algorithm a JWKS may carry', () => {
  const keys: Array<{ alg: string; privateKey: KeyObject }> = []
  let url: string

  beforeAll(async () => {
    // One key per family (an RSA key signs RS* and PS* alike), published under one kid per algorithm.
    const families: Array<[KeyObject, KeyObject, string[]]> = [
      [...pair('ec', { namedCurve: 'P-256' }), ['ES256']],
      [...pair('ec', { namedCurve: 'P-384' }), ['ES384']],
      [...pair('ec', { namedCurve: 'P-521' }), ['ES512']],
      [...pair('rsa', { modulusLength: 2048 }), ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']],
      [...pair('ed25519', {}), ['EdDSA', 'Ed25519']]
    ]
    const published: unknown[] = []
    for (const [privateKey, publicKey, algs] of families) {
      for (const alg of algs) {
        keys.push({ alg, privateKey })
        published.push({ ...publicKey.export({ format: 'jwk' }), kid: alg, alg, use: 'sig' })
      }
    }
    url = await endpoint((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published })) })
  })

  it('verifies a token of each', async () => {
    const verify = jwksAt(url)
    for (const { alg, privateKey } of keys) {
      const token = await new SignJWT({ sub: `by-${alg}` }).setProtectedHeader({ alg, kid: alg }).setExpirationTime('5m').sign(privateKey)
      expect(await verify(token)).toMatchObject({ sub: `by-${alg}` })
    }
    expect(keys).toHaveLength(11)
  })
})

function pair (type: 'ec' | 'rsa' | 'ed25519', options: object): [KeyObject, KeyObject] {
  const { privateKey, publicKey } = generateKeyPairSync(type as 'ec', options as { namedCurve: string })
  return [privateKey, publicKey]
}

describe('refusals, in words and with their cause', () => {
  const hs = createJwtVerifier({ secret: SECRET, jwksCooldownMs: 0 })

  it('not a JWT at all', async () => {
    expect(await refusal(hs('not-a-jwt'))).toMatchObject({ kind: 'invalid', message: 'credential is not a valid JWT' })
  })

  it('a subject that is not a string', async () => {
    expect(await refusal(hs(await signHs256({ sub: 42 as unknown as string }, SECRET)))).toMatchObject({ kind: 'invalid', message: 'token subject is not a string' })
  })

  it('expired', async () => {
    const err = await refusal(hs(await signHs256({ sub: 'a' }, SECRET, { expiresIn: -5 })))
    expect(err).toMatchObject({ kind: 'invalid', message: 'token expired' })
    expect(err.cause).toBeInstanceOf(errors.JWTExpired)
  })

  it('a claim that fails its check names the claim', async () => {
    const strict = createJwtVerifier({ secret: SECRET, audience: 'authenticated', jwksCooldownMs: 0 })
    const err = await refusal(strict(await signHs256({ sub: 'a', aud: 'anon' }, SECRET)))
    expect(err).toMatchObject({ kind: 'invalid', message: 'token refused: unexpected "aud" claim value' })
    expect(err.cause).toBeInstanceOf(errors.JWTClaimValidationFailed)
  })

  it('a bad signature is an invalid token, not an unknown key', async () => {
    const [h, p] = (await signHs256({ sub: 'a' }, SECRET)).split('.')
    const err = await refusal(hs(`${h}.${p}.${Buffer.from('forged').toString('base64url')}`))
    expect(err).toMatchObject({ kind: 'invalid', message: 'invalid token' })
    expect(err.cause).toBeInstanceOf(errors.JWSSignatureVerificationFailed)
  })

  it('only a secret configured: an ES256 token is an invalid token', async () => {
    const err = await refusal(hs(await signEs256({ sub: 'a' }, await newEs256Key('k'))))
    expect(err).toMatchObject({ kind: 'invalid', message: 'invalid token' })
    expect(err.cause).toBeInstanceOf(errors.JOSEAlgNotAllowed)
  })

  it('a kid the set does not hold', async () => {
    const url = await endpoint((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}') })
    const err = await refusal(jwksAt(url)(await signEs256({ sub: 'a' }, await newEs256Key('k'))))
    expect(err).toMatchObject({ kind: 'invalid', message: 'token signed with an unknown key' })
    expect(err.cause).toBeInstanceOf(errors.JWKSNoMatchingKey)
  })
})

describe('the JWKS fetch', () => {
  const token = async () => await signEs256({ sub: 'a' }, await newEs256Key('k'))
  const UNAVAILABLE = { kind: 'unavailable', message: 'the signing keys (AUTH_JWKS_URL) could not be fetched' }

  it('an answer that is not a key set is unavailable, not invalid', async () => {
    const url = await endpoint((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":"nope"}') })
    const err = await refusal(jwksAt(url)(await token()))
    expect(err).toMatchObject(UNAVAILABLE)
    expect(err.cause).toBeInstanceOf(errors.JWKSInvalid)
  })

  it('a failing status is never taken as a key set, even with keys in its body', async () => {
    const key = await newEs256Key('k')
    const url = await endpoint((_req, res) => { res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [key.jwk] })) })
    expect(await refusal(jwksAt(url)(await signEs256({ sub: 'a' }, key)))).toMatchObject(UNAVAILABLE)
  })

  it('an answer of exactly 1 MiB is read; one byte more is refused', async () => {
    const key = await newEs256Key('k')
    const body = JSON.stringify({ keys: [key.jwk] })
    let size = 1024 * 1024
    const url = await endpoint((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(body.padEnd(size, ' '))
    })
    expect(await jwksAt(url)(await signEs256({ sub: 'a' }, key))).toMatchObject({ sub: 'a' })
    size += 1
    expect(await refusal(jwksAt(url)(await signEs256({ sub: 'a' }, key)))).toMatchObject(UNAVAILABLE)
  })
})
