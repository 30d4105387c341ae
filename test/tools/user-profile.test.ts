/** fetch_user_profile: validated id, the store's profile, and a clear failure for an unknown user. */
import { describe, expect, it } from 'vitest'
import { createToolRegistry } from '../../src/tools/registry.js'
import { userProfileTool } from '../../src/tools/user-profile.js'
import type { UserProfile } from '../../src/store/types.js'

const bob: UserProfile = { userId: 'bob', name: 'Bob', email: 'bob@example.com', plan: 'free', createdAt: '2025-01-01T00:00:00.000Z', preferences: {} }
const asked: string[] = []
const reg = createToolRegistry({
  tools: [userProfileTool({ getProfile: async (id) => { asked.push(id); return id === 'bob' ? bob : null } })],
  timeoutMs: 1_000
})
const run = (args: string, principal: string | null = null) =>
  reg.run({ name: 'fetch_user_profile', arguments: args }, { signal: new AbortController().signal, sessionId: 's', principal })

describe('fetch_user_profile', () => {
  it('returns the profile of a known user', async () => {
    expect(await run('{"userId":"bob"}')).toMatchObject({ ok: true, result: bob })
  })

  it('an unknown user is ok:false with a clear reason', async () => {
    expect(await run('{"userId":"nobody"}')).toMatchObject({ ok: false, error: 'No user with id "nobody"' })
  })

  it('validates the id before asking the store', async () => {
    asked.length = 0
    expect(await run('{}')).toMatchObject({ ok: false, error: 'userId is required (nobody is signed in)' })
    for (const args of ['{"userId":""}', '{"userId":"a b"}', `{"userId":"${'x'.repeat(65)}"}`, '{"userId":42}']) {
      expect(await run(args)).toMatchObject({ ok: false, error: expect.stringMatching(/^Invalid arguments for fetch_user_profile:/) })
    }
    expect(asked).toEqual([])
    expect(await run('{"userId":"carol.d-1@x_y"}')).toMatchObject({ ok: false, error: 'No user with id "carol.d-1@x_y"' })
  })

  it('describes its parameter to the model', () => {
    expect(reg.specs()[0].function.parameters).toEqual({
      type: 'object',
      properties: { userId: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.@-]+$' } }
    })
  })

  it('signed in, answers for the caller only: another id is refused before the store is asked', async () => {
    asked.length = 0
    expect(await run('{"userId":"alice"}', 'bob')).toMatchObject({ ok: false, error: 'Not allowed: the signed-in user may read only their own profile, not "alice"' })
    expect(asked).toEqual([])
    expect(await run('{"userId":"bob"}', 'bob')).toMatchObject({ ok: true, result: bob })
    expect(await run('{}', 'bob')).toMatchObject({ ok: true, result: bob })
    expect(asked).toEqual(['bob', 'bob'])
  })
})
