/** fetch_user_profile: looks a user's profile up in the store; an unknown id is a clear tool failure. */
import { z } from 'zod'
import type { UserProfile } from '../store/types.js'
import { defineTool } from './registry.js'
import type { ToolDefinition } from './types.js'

export const UserProfileArgs = z.object({
  userId: z.string().min(1).max(64).regex(/^[A-Za-z0-9_.@-]+$/, 'userId may contain letters, digits and _ . @ - only')
})

export function userProfileTool ({ getProfile }: { getProfile: (userId: string) => Promise<UserProfile | null> }): ToolDefinition {
  return defineTool({
    name: 'fetch_user_profile',
    description: 'Fetches the profile (name, email, plan, sign-up date, preferences) of a user of this service by user id, e.g. "alice" or "user-42".',
    parameters: UserProfileArgs,
    handler: async ({ userId }): Promise<UserProfile> => {
      const profile = await getProfile(userId)
      if (!profile) throw new Error(`No user with id "${userId}"`)
      return profile
    }
  })
}
