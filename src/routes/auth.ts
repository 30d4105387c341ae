/** GET /auth/config (public): how the page signs in — not at all, with a pasted token or API key, or through Supabase Auth. */
import type { FastifyInstance } from 'fastify'
import { authConfigSchema } from './schemas.js'

export default async function authRoutes (app: FastifyInstance): Promise<void> {
  const { config, auth } = app.services
  // Only public values: the anon key is meant for browsers (row level security guards the data).
  const supabase = config.SUPABASE_URL && config.SUPABASE_ANON_KEY ? { url: config.SUPABASE_URL, anonKey: config.SUPABASE_ANON_KEY } : undefined
  const answer = !auth.enabled
    ? { enabled: false, mode: 'none' as const }
    : supabase ? { enabled: true, mode: 'supabase' as const, supabase } : { enabled: true, mode: 'token' as const }
  app.get('/auth/config', { schema: authConfigSchema }, async () => answer)
}
