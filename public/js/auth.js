/** The page's credential (DESIGN §10): a pasted access token or API key, or a Supabase Auth session; never in the URL, localStorage or a cookie. */
import { createSupabaseAuth } from './supabase-auth.js'

// sessionStorage: a reload in the same tab stays signed in; closing the tab forgets the token.
const TOKEN_KEY = 'chat.accessToken'

/**
 * The credential source both modes share:
 * - mode: 'token' | 'supabase'
 * - token(): the access token to present now, or null
 * - email(): the signed-in email when the mode knows one (Supabase), else null
 * - signOut(): ends the sign-in (Supabase: auth.signOut(), which also calls its logout endpoint)
 * - forget(): drops a credential the server refused, without asking anyone
 * - onChange(fn): fn('refreshed') when the token was replaced for the same user, fn('signed-out') when the provider ended the session
 * Token mode adds useToken(token); Supabase mode adds signInWithPassword(email, password) and sendMagicLink(email), both → { error }.
 */
export async function createAuth (config) {
  if (config.mode === 'supabase') return createSupabaseAuth(config.supabase)
  return createTokenAuth()
}

function createTokenAuth () {
  let current = read()

  function read () {
    try { return sessionStorage.getItem(TOKEN_KEY) } catch { return null } // storage can be disabled
  }

  function write (token) {
    current = token
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token)
      else sessionStorage.removeItem(TOKEN_KEY)
    } catch {}
  }

  return {
    mode: 'token',
    token: () => current,
    email: () => null,
    useToken: (token) => write(token),
    async signOut () { write(null) },
    async forget () { write(null) },
    // A pasted token only changes when the user pastes another one; the page sends that itself.
    onChange () {}
  }
}
