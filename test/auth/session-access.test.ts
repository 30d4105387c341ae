/** The REST ownership rules: who may read a session, whose sessions a listing shows. */
import { describe, expect, it } from 'vitest'
import { listedOwner, mayRead } from '../../src/auth/session-access.js'
import type { Principal } from '../../src/auth/types.js'

const alice: Principal = { id: 'alice', admin: false, expiresAt: null }
const root: Principal = { id: 'root', admin: true, expiresAt: null }

describe('mayRead', () => {
  it('an open server (no principal) reads everything; a user reads only their own; an admin reads all', () => {
    expect(mayRead({ owner: 'bob' }, null)).toBe(true)
    expect(mayRead({ owner: null }, null)).toBe(true)
    expect(mayRead({ owner: 'alice' }, alice)).toBe(true)
    expect(mayRead({ owner: 'bob' }, alice)).toBe(false)
    expect(mayRead({ owner: null }, alice)).toBe(false)
    expect(mayRead({ owner: 'bob' }, root)).toBe(true)
    expect(mayRead({ owner: null }, root)).toBe(true)
  })
})

describe('listedOwner', () => {
  it('a user always lists their own, whatever they ask for; an admin or an open server lists what is asked', () => {
    expect(listedOwner(alice, 'bob')).toBe('alice')
    expect(listedOwner(alice, undefined)).toBe('alice')
    expect(listedOwner(root, 'bob')).toBe('bob')
    expect(listedOwner(root, undefined)).toBeUndefined()
    expect(listedOwner(null, 'bob')).toBe('bob')
    expect(listedOwner(null, undefined)).toBeUndefined()
  })
})
