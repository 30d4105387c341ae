/** fetch_user_profile: looks a user's profile up in the store; signed in, only the caller's own. */
import { z } from 'zod'
import type { UserProfile } from '../store/types.js'
import { defineTool } from './registry.js'
import type { ToolDefinition } from './types.js'

export const UserProfileArgs = z.object({
  userId: z.string().min(1).max(64).regex(/^[A-Za-z0-9_.@-]+$/, 'userId may contain letters, digits and _ . @ - only').optional()
})

export function userProfileTool ({ getProfile }: { getProfile: (userId: string) => Promise<UserProfile | null> }): ToolDefinition {
  return defineTool({
    name: 'fetch_user_profile',
    description: 'Fetches the profile (name, email, plan, sign-up date, preferences) of a user of this service by user id, e.g. "alice" or "user-42". ' +
      'When the user is signed in, only their own profile can be read: omit userId for it.',
    parameters: UserProfileArgs,
    handler: async ({ userId }, { principal }): Promise<UserProfile> => {
      // Whatever the model is told, a signed-in caller reads no one else's data (DESIGN §10).
      if (principal && userId !== undefined && userId !== principal) {
        throw new Error(`Not allowed: the signed-in user may read only their own profile, not "${userId}"`)
      }
      const id = principal ?? userId
      if (id === undefined) throw new Error('userId is required (nobody is signed in)')
      const profile = await getProfile(id)
      if (!profile) throw new Error(`No user with id "${id}"`)
      return profile
    }
  })
}
