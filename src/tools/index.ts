/** The default tool set the server offers the model. */
import type { UserProfile } from '../store/types.js'
import { systemMetricsTool } from './system-metrics.js'
import type { ToolDefinition } from './types.js'
import { userProfileTool } from './user-profile.js'

export function createDefaultTools ({ liveSessions, getProfile }: {
  liveSessions: () => number
  getProfile: (userId: string) => Promise<UserProfile | null>
}): ToolDefinition[] {
  return [systemMetricsTool({ liveSessions }), userProfileTool({ getProfile })]
}
