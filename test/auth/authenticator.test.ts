/** createAuthenticator's own checks, before and after a JWT is verified: what is refused, with which words, and what passes. */
import { describe, expect, it } from 'vitest'
import { createAuthenticator } from '../../src/auth/authenticator.js'
import { testConfig } from '../../src/config.js'
import { refusal } from '../support/auth-refusal.js'
import { signHs256 } from '../support/jwks-issuer.js'

const SECRET = 'hs256-shared-secret-0123456789-abcdefghij'
const KEY = 'ci-secret-0123456789abcdef'


describe('createAuthenticator', () => {
  it('without authentication configured it is disabled and refuses anything it is asked', async () => {
    const off = createAuthenticator(testConfig({}))
    expect(off.enabled).toBe(false)
    expect(await refusal(off, 'anything')).toMatchObject({ kind: 'invalid', message: 'authentication is not configured' })
    expect(createAuthenticator(testConfig({ API_KEYS: `ci:${KEY}` })).enabled).toBe(true)
  })

  it('no credential, or an empty one, is asked for by name', async () => {
    const auth = createAuthenticator(testConfig({ AUTH_JWT_SECRET: SECRET }))
    for (const credential of [undefined, '']) {
      expect(await refusal(auth, credential)).toMatchObject({
        kind: 'invalid', message: 'a credential is required (Authorization: Bearer, or access_token for sockets)'
      })
    }
  })

  it('8,192 characters are read; one more is too long', async () => {
    const auth = createAuthenticator(testConfig({ AUTH_JWT_SECRET: SECRET }))
    expect((await refusal(auth, 'a'.repeat(8_192))).message).toBe('invalid credential')
    expect((await refusal(auth, 'a'.repeat(8_193))).message).toBe('credential too long')
  })

  it('what is not shaped like a JWT is refused before any verification, whole or in part', async () => {
    const auth = createAuthenticator(testConfig({ AUTH_JWT_SECRET: SECRET }))
    for (const credential of ['garbage', 'bad token.b.c', 'a.b.c d', 'a.b', 'a..c', '.b.c']) {
      expect(await refusal(auth, credential)).toMatchObject({ kind: 'invalid', message: 'invalid credential' })
    }
  })

  it('with API keys only, an unknown credential shaped like a JWT is refused, not verified', async () => {
    const auth = createAuthenticator(testConfig({ API_KEYS: `ci:${KEY}` }))
    expect(await refusal(auth, await signHs256({ sub: 'x' }, SECRET))).toMatchObject({ kind: 'invalid', message: 'invalid credential' })
    expect(await auth.authenticate(KEY)).toEqual({ id: 'apikey:ci', admin: false, expiresAt: null })
  })

  it('a subject of 256 characters is taken; 257, empty or apikey: is not', async () => {
    const auth = createAuthenticator(testConfig({ AUTH_JWT_SECRET: SECRET, AUTH_ADMINS: 'root' }))
    expect((await auth.authenticate(await signHs256({ sub: 'u'.repeat(256) }, SECRET))).id).toBe('u'.repeat(256))
    for (const sub of ['u'.repeat(257), '', 'apikey:ci']) {
      expect(await refusal(auth, await signHs256({ sub }, SECRET))).toMatchObject({ kind: 'invalid', message: 'token subject not accepted' })
    }
    expect(await auth.authenticate(await signHs256({ sub: 'root' }, SECRET))).toMatchObject({ id: 'root', admin: true })
  })
})
