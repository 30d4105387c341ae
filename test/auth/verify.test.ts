/** createAuthenticator against a real local JWKS issuer, HS256 secrets and API keys; the AUTH_* config rules (DESIGN §10). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthenticator } from '../../src/auth/authenticator.js'
import type { Authenticator } from '../../src/auth/types.js'
import { ConfigError, isLoopbackHost, testConfig } from '../../src/config.js'
import { refusal } from '../support/auth-refusal.js'
import { deadUrl, signEs256, signHs256, startJwksIssuer, unsecuredToken, type IssuerKey, type JwksIssuer } from '../support/jwks-issuer.js'

const SECRET = 'hs256-shared-secret-0123456789-abcdefghij'
const KEY_CI = 'ci-secret-0123456789abcdef'
const KEY_OPS = 'ops-secret-fedcba9876543210'

let issuer: JwksIssuer
let jwks: Authenticator
let foreignSameKid: IssuerKey
let foreignOtherKid: IssuerKey
const now = () => Math.floor(Date.now() / 1000)

beforeAll(async () => {
  issuer = await startJwksIssuer()
  jwks = createAuthenticator(testConfig({ AUTH_JWKS_URL: issuer.url, AUTH_JWKS_COOLDOWN_MS: '0', AUTH_ADMINS: 'root-user, apikey:ops' }))
  foreignSameKid = await issuer.newKey(issuer.keys[0].kid)
  foreignOtherKid = await issuer.newKey('not-published')
})
afterAll(async () => { await issuer.close() })


describe('JWTs from a JWKS (ES256)', () => {
  it('accepts a valid token: principal = sub, expiresAt = exp * 1000, admin from AUTH_ADMINS', async () => {
    const token = await issuer.sign({ sub: 'user-7' }, { expiresIn: 120 })
    const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp as number
    expect(await jwks.authenticate(token)).toEqual({ id: 'user-7', admin: false, expiresAt: exp * 1000 })
    expect(await jwks.authenticate(await issuer.sign({ sub: 'root-user' }))).toMatchObject({ id: 'root-user', admin: true })
  })

  it.each<[string, () => Promise<string>]>([
    ['signed by another key under a published kid', () => signEs256({ sub: 'mallory' }, foreignSameKid)],
    ['signed by a key that is not in the set', () => signEs256({ sub: 'mallory' }, foreignOtherKid)],
    ['expired', () => issuer.sign({ sub: 'user-7' }, { expiresIn: -5 })],
    ['not valid before a future nbf', () => issuer.sign({ sub: 'user-7', nbf: now() + 60 })],
    ['without exp', () => issuer.sign({ sub: 'user-7' }, { expiresIn: null })],
    ['without sub', () => issuer.sign({})],
    ['with an empty sub', () => issuer.sign({ sub: '' })],
    ['with a sub posing as an API key', () => issuer.sign({ sub: 'apikey:ci' })],
    ['with a sub longer than 256 characters', () => issuer.sign({ sub: 'u'.repeat(257) })],
    // Validly signed, but a sub that is not a string: jose does not check its type on verification.
    ['with a numeric sub', () => issuer.sign({ sub: 42 as unknown as string })],
    ['with an array sub', () => issuer.sign({ sub: ['apikey:ci'] as unknown as string })],
    ['with a null sub', () => issuer.sign({ sub: null as unknown as string })],
    ['with an exp that is not a number', () => issuer.sign({ sub: 'user-7', exp: 'never' as unknown as number })],
    ['alg none', async () => unsecuredToken({ sub: 'user-7', exp: now() + 300 })],
    ['alg none with a kid of the set', async () => `${Buffer.from(JSON.stringify({ alg: 'none', kid: issuer.keys[0].kid })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'user-7', exp: now() + 300 })).toString('base64url')}.`],
    ['HS256 (any secret) against a JWKS-only config', () => signHs256({ sub: 'user-7' }, SECRET)],
    ['with a tampered payload', async () => {
      const [h, , s] = (await issuer.sign({ sub: 'user-7' })).split('.')
      return `${h}.${Buffer.from(JSON.stringify({ sub: 'root-user', exp: now() + 300 })).toString('base64url')}.${s}`
    }]
  ])('refuses a token %s as invalid', async (_what, make) => {
    const err = await refusal(jwks, await make())
    expect(err.kind).toBe('invalid')
  })

  it('refuses a token for another audience or issuer when AUTH_JWT_AUDIENCE / AUTH_JWT_ISSUER are set', async () => {
    const strict = createAuthenticator(testConfig({ AUTH_JWKS_URL: issuer.url, AUTH_JWT_AUDIENCE: 'authenticated', AUTH_JWT_ISSUER: 'https://issuer.test/auth/v1' }))
    const good = { sub: 'user-7', aud: 'authenticated', iss: 'https://issuer.test/auth/v1' }
    expect((await strict.authenticate(await issuer.sign(good))).id).toBe('user-7')
    for (const claims of [{ ...good, aud: 'anon' }, { ...good, iss: 'https://evil.test/auth/v1' }, { sub: 'user-7', iss: good.iss }, { sub: 'user-7', aud: good.aud }]) {
      const err = await refusal(strict, await issuer.sign(claims))
      expect(err.kind).toBe('invalid')
      expect(err.message).toMatch(/"(aud|iss)" claim/)
    }
  })

  it.each<[string, string | undefined]>([
    ['no credential', undefined],
    ['an empty one', ''],
    ['a word', 'garbage'],
    ['three dotted words', 'a.b.c'],
    ['two segments', 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0'],
    ['a JSON header that is not an object', `${Buffer.from('"x"').toString('base64url')}.e30.`],
    ['a Bearer prefix left in', 'Bearer abc.def.ghi'],
    ['9,000 characters', 'a'.repeat(9_000)],
    ['9,000 characters shaped like a JWT', `eyJhbGciOiJFUzI1NiJ9.${'a'.repeat(8_950)}.sig`]
  ])('refuses %s as invalid, without fetching keys', async (_what, credential) => {
    const fresh = await startJwksIssuer()
    try {
      const auth = createAuthenticator(testConfig({ AUTH_JWKS_URL: fresh.url, AUTH_JWKS_COOLDOWN_MS: '0' }))
      const err = await refusal(auth, credential)
      expect(err.kind).toBe('invalid')
      if (credential !== undefined && credential.length > 8_192) expect(err.message).toBe('credential too long')
      expect(fresh.fetches).toBe(0)
    } finally {
      await fresh.close()
    }
  })
})

describe('key rotation and the JWKS cache', () => {
  it('a token signed with a newly published key is accepted by the same authenticator after exactly one refetch', async () => {
    const own = await startJwksIssuer()
    try {
      const auth = createAuthenticator(testConfig({ AUTH_JWKS_URL: own.url, AUTH_JWKS_COOLDOWN_MS: '0' }))
      expect((await auth.authenticate(await own.sign({ sub: 'first' }))).id).toBe('first')
      expect((await auth.authenticate(await own.sign({ sub: 'again' }))).id).toBe('again')
      expect(own.fetches).toBe(1)
      const old = own.keys[0]
      const next = await own.rotate()
      expect(next.kid).not.toBe(old.kid)
      expect((await auth.authenticate(await own.sign({ sub: 'rotated' }, { key: next }))).id).toBe('rotated')
      expect(own.fetches).toBe(2)
      // Both keys are known now: tokens of either verify from the cache.
      expect((await auth.authenticate(await own.sign({ sub: 'old' }, { key: old }))).id).toBe('old')
      expect((await auth.authenticate(await own.sign({ sub: 'new' }, { key: next }))).id).toBe('new')
      expect(own.fetches).toBe(2)
      // A key withdrawn from the set keeps verifying only as long as the cached set does not change.
      own.keys = [next]
      await refusal(auth, await signEs256({ sub: 'x' }, foreignOtherKid))
      expect(own.fetches).toBe(3)
      expect((await refusal(auth, await own.sign({ sub: 'old' }, { key: old }))).kind).toBe('invalid')
      expect(own.fetches).toBe(4)
    } finally {
      await own.close()
    }
  })

  it('an unknown kid does not refetch the set inside the cooldown', async () => {
    const own = await startJwksIssuer()
    try {
      const auth = createAuthenticator(testConfig({ AUTH_JWKS_URL: own.url, AUTH_JWKS_COOLDOWN_MS: '60000' }))
      expect((await auth.authenticate(await own.sign({ sub: 'first' }))).id).toBe('first')
      expect(own.fetches).toBe(1)
      const next = await own.rotate()
      for (let i = 0; i < 3; i++) {
        const err = await refusal(auth, await own.sign({ sub: 'rotated' }, { key: next }))
        expect(err).toMatchObject({ kind: 'invalid', message: 'token signed with an unknown key' })
      }
      expect((await refusal(auth, await signEs256({ sub: 'x' }, foreignOtherKid))).kind).toBe('invalid')
      expect(own.fetches).toBe(1)
    } finally {
      await own.close()
    }
  })

  it('JWKS endpoint down on a fresh authenticator → unavailable, not invalid; a bad token is still invalid', async () => {
    const auth = createAuthenticator(testConfig({ AUTH_JWKS_URL: await deadUrl(), AUTH_JWKS_COOLDOWN_MS: '0' }))
    const err = await refusal(auth, await issuer.sign({ sub: 'user-7' }))
    expect(err.kind).toBe('unavailable')
    expect(err.message).toMatch(/AUTH_JWKS_URL/)
    expect((await refusal(auth, unsecuredToken({ sub: 'user-7', exp: now() + 60 }))).kind).toBe('invalid')
    expect((await refusal(auth, 'garbage')).kind).toBe('invalid')
  })

  it('JWKS endpoint answering 503 → unavailable; once it is back the same authenticator accepts the token', async () => {
    const own = await startJwksIssuer()
    try {
      own.failWith = 503
      const auth = createAuthenticator(testConfig({ AUTH_JWKS_URL: own.url, AUTH_JWKS_COOLDOWN_MS: '0' }))
      const token = await own.sign({ sub: 'patient' })
      expect((await refusal(auth, token)).kind).toBe('unavailable')
      expect(own.fetches).toBe(1)
      own.failWith = undefined
      expect((await auth.authenticate(token)).id).toBe('patient')
      expect(own.fetches).toBe(2)
    } finally {
      await own.close()
    }
  })

  it('keys cached before the endpoint went down keep verifying', async () => {
    const own = await startJwksIssuer()
    const auth = createAuthenticator(testConfig({ AUTH_JWKS_URL: own.url, AUTH_JWKS_COOLDOWN_MS: '0' }))
    expect((await auth.authenticate(await own.sign({ sub: 'before' }))).id).toBe('before')
    const later = await own.sign({ sub: 'after' })
    await own.close()
    expect((await auth.authenticate(later)).id).toBe('after')
  })
})

describe('API keys', () => {
  const keyed = () => createAuthenticator(testConfig({ API_KEYS: `ci:${KEY_CI}, ops:${KEY_OPS}`, AUTH_ADMINS: 'apikey:ops' }))

  it('maps each configured key to apikey:<name>, with no expiry; admin from AUTH_ADMINS', async () => {
    const auth = keyed()
    expect(await auth.authenticate(KEY_CI)).toEqual({ id: 'apikey:ci', admin: false, expiresAt: null })
    expect(await auth.authenticate(KEY_OPS)).toEqual({ id: 'apikey:ops', admin: true, expiresAt: null })
  })

  it.each([
    ['a wrong secret', 'wrong-secret-0123456789abcd'],
    ['the key name', 'ci'],
    ['name:secret', `ci:${KEY_CI}`],
    ['a prefix of the secret', KEY_CI.slice(0, -1)],
    ['the secret with a suffix', `${KEY_CI}x`],
    ['the secret with a prefix', `x${KEY_CI}`],
    ['the secret in upper case', KEY_CI.toUpperCase()],
    ['the secret with a space after it', `${KEY_CI} `],
    ['two secrets joined', `${KEY_CI},${KEY_OPS}`]
  ])('refuses %s', async (_what, presented) => {
    expect((await refusal(keyed(), presented)).kind).toBe('invalid')
  })

  it('checks keys before parsing a JWT: a JWT-shaped key is accepted without touching the JWKS', async () => {
    const dotted = 'svcpart0001.svcpart0002.svcpart0003'
    const own = await startJwksIssuer()
    try {
      const auth = createAuthenticator(testConfig({ AUTH_JWKS_URL: own.url, API_KEYS: `svc:${dotted}` }))
      expect(await auth.authenticate(dotted)).toEqual({ id: 'apikey:svc', admin: false, expiresAt: null })
      expect(own.fetches).toBe(0)
      // The same authenticator still verifies JWTs.
      expect((await auth.authenticate(await own.sign({ sub: 'user-7' }))).id).toBe('user-7')
      expect(own.fetches).toBe(1)
    } finally {
      await own.close()
    }
    // With the JWKS endpoint down, a key still works (no fetch is attempted for it).
    const offline = createAuthenticator(testConfig({ AUTH_JWKS_URL: await deadUrl(), API_KEYS: `svc:${dotted}` }))
    expect((await offline.authenticate(dotted)).id).toBe('apikey:svc')
  })
})

describe('HS256 with AUTH_JWT_SECRET', () => {
  const hs = () => createAuthenticator(testConfig({ AUTH_JWT_SECRET: SECRET }))

  it('accepts a token signed with the secret', async () => {
    const token = await signHs256({ sub: 'alice' }, SECRET, { expiresIn: 60 })
    const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp as number
    expect(await hs().authenticate(token)).toEqual({ id: 'alice', admin: false, expiresAt: exp * 1000 })
  })

  it.each<[string, () => Promise<string>]>([
    ['signed with another secret', () => signHs256({ sub: 'alice' }, `${SECRET}-other`)],
    ['ES256 (a JWKS key) against an HS256-only config', () => issuer.sign({ sub: 'alice' })],
    ['expired', () => signHs256({ sub: 'alice' }, SECRET, { expiresIn: -5 })],
    ['without exp', () => signHs256({ sub: 'alice' }, SECRET, { expiresIn: null })],
    ['alg none', async () => unsecuredToken({ sub: 'alice', exp: now() + 60 })]
  ])('refuses a token %s', async (_what, make) => {
    expect((await refusal(hs(), await make())).kind).toBe('invalid')
  })

  it('with both a secret and a JWKS, each token is checked against its own kind of key only', async () => {
    const both = createAuthenticator(testConfig({ AUTH_JWT_SECRET: SECRET, AUTH_JWKS_URL: issuer.url, AUTH_JWKS_COOLDOWN_MS: '0' }))
    expect((await both.authenticate(await signHs256({ sub: 'a' }, SECRET))).id).toBe('a')
    expect((await both.authenticate(await issuer.sign({ sub: 'b' }))).id).toBe('b')
    expect((await refusal(both, await signHs256({ sub: 'a' }, `${SECRET}-other`))).kind).toBe('invalid')
    expect((await refusal(both, unsecuredToken({ sub: 'a', exp: now() + 60 }))).kind).toBe('invalid')
  })
})

describe('AUTH_* configuration', () => {
  /** The ConfigError loading `env` throws. */
  const configError = (env: Record<string, string>): ConfigError => {
    try {
      testConfig(env)
    } catch (err) {
      if (err instanceof ConfigError) return err
      throw err
    }
    throw new Error(`expected a ConfigError for ${Object.keys(env).join(', ')}`)
  }

  it.each<[string, Record<string, string>, string, string[]]>([
    ['AUTH_JWT_SECRET shorter than 32 characters', { AUTH_JWT_SECRET: 'short-secret-31-chars-long-xxxx' }, 'AUTH_JWT_SECRET', ['short-secret-31-chars-long-xxxx']],
    ['an API_KEYS entry without a colon', { API_KEYS: 'nocolonbutlongenoughsecret42' }, 'API_KEYS', ['nocolonbutlongenoughsecret42']],
    ['an API_KEYS entry with a short secret', { API_KEYS: `ci:${KEY_CI},ops:tiny-s3cret` }, 'API_KEYS', ['tiny-s3cret', KEY_CI]],
    ['duplicate API_KEYS names', { API_KEYS: `ci:${KEY_CI},ci:${KEY_OPS}` }, 'API_KEYS', [KEY_CI, KEY_OPS]],
    ['two API_KEYS sharing a secret', { API_KEYS: `ci:${KEY_CI},ops:${KEY_CI}` }, 'API_KEYS', [KEY_CI]],
    ['AUTH_DISABLED=true with API_KEYS', { AUTH_DISABLED: 'true', API_KEYS: `ci:${KEY_CI}` }, 'AUTH_DISABLED', [KEY_CI]],
    ['AUTH_DISABLED=true with AUTH_JWT_SECRET', { AUTH_DISABLED: 'true', AUTH_JWT_SECRET: SECRET }, 'AUTH_DISABLED', [SECRET]]
  ])('%s → a ConfigError naming the variable, never the secret', (_what, env, variable, secrets) => {
    const err = configError(env)
    expect(err.message).toContain(variable)
    for (const secret of secrets) expect(err.message).not.toContain(secret)
  })

  it('HOST=0.0.0.0 without authentication → a ConfigError naming HOST and the AUTH_* / API_KEYS variables', () => {
    const err = configError({ HOST: '0.0.0.0' })
    expect(err.message).toMatch(/^Invalid configuration: HOST: 0\.0\.0\.0 /)
    expect(err.message).toContain('AUTH_JWT_SECRET')
    expect(err.message).toContain('API_KEYS')
    expect(err.message).toContain('AUTH_DISABLED=true')
  })

  it('HOST=0.0.0.0 loads with AUTH_DISABLED=true (auth off) or with a credential configured (auth on)', () => {
    expect(testConfig({ HOST: '0.0.0.0', AUTH_DISABLED: 'true' })).toMatchObject({ HOST: '0.0.0.0', AUTH_DISABLED: true, authEnabled: false })
    expect(testConfig({ HOST: '0.0.0.0', API_KEYS: `ci:${KEY_CI}` })).toMatchObject({ authEnabled: true, apiKeys: [{ name: 'ci', secret: KEY_CI }] })
    expect(testConfig({ HOST: '0.0.0.0', AUTH_JWKS_URL: 'https://x.supabase.co/auth/v1/.well-known/jwks.json' }).authEnabled).toBe(true)
    expect(testConfig({}).authEnabled).toBe(false)
  })

  it.each<[string, boolean]>([
    ['127.0.0.1', true], ['127.1.2.3', true], ['::1', true], ['[::1]', true], ['localhost', true], ['LOCALHOST', true],
    ['0.0.0.0', false], ['10.0.0.1', false], ['example.com', false], ['::', false], ['127.0.0.1.example.com', false], ['localhost.example.com', false], ['128.0.0.1', false]
  ])('isLoopbackHost(%s) is %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback)
  })
})
