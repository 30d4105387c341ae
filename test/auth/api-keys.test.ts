/** createApiKeyMatcher: the name of the key whose secret was presented, compared by digest. */
import { describe, expect, it } from 'vitest'
import { createApiKeyMatcher } from '../../src/auth/api-keys.js'

describe('createApiKeyMatcher', () => {
  const match = createApiKeyMatcher([
    { name: 'ci', secret: 'ci-secret-0123456789abcdef' },
    { name: 'ops', secret: 'ops-secret-fedcba9876543210' },
    { name: 'üñí', secret: 'ünïcode-sécret-0123456789' }
  ])

  it('names the key of an exact secret, any key of the list', () => {
    expect(match('ci-secret-0123456789abcdef')).toBe('ci')
    expect(match('ops-secret-fedcba9876543210')).toBe('ops')
    expect(match('ünïcode-sécret-0123456789')).toBe('üñí')
  })

  it('matches nothing for a near miss, a prefix, a longer secret, another case or an empty one', () => {
    for (const presented of ['ci-secret-0123456789abcdeF', 'ci-secret-0123456789abcde', 'ci-secret-0123456789abcdef0',
      'CI-SECRET-0123456789ABCDEF', '', 'ci', 'unicode-secret-0123456789']) {
      expect(match(presented)).toBeUndefined()
    }
  })

  it('with two keys sharing a secret the later one is named (every key is compared); with none nothing matches', () => {
    const twins = createApiKeyMatcher([{ name: 'first', secret: 'same-secret-0123456789' }, { name: 'second', secret: 'same-secret-0123456789' }])
    expect(twins('same-secret-0123456789')).toBe('second')
    expect(createApiKeyMatcher([])('anything')).toBeUndefined()
  })
})
