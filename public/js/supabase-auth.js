/** Supabase Auth in the page: loads supabase-js from /vendor/, signs in by password or magic link, and reports token refreshes. */

const SCRIPT = '/vendor/supabase.js'

/** supabase-js's browser build is a classic script defining window.supabase; loaded only in this mode. */
function loadScript (src) {
  if (window.supabase?.createClient) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const el = document.createElement('script')
    el.src = src
    el.addEventListener('load', () => resolve())
    el.addEventListener('error', () => reject(new Error(`could not load ${src}`)))
    document.head.append(el)
  })
}

/** createSupabaseAuth({ url, anonKey }) → the credential source described in auth.js. */
export async function createSupabaseAuth ({ url, anonKey }) {
  await loadScript(SCRIPT)
  const client = window.supabase.createClient(url, anonKey, {
    auth: { storage: window.sessionStorage, persistSession: true, autoRefreshToken: true, detectSessionInUrl: true }
  })
  const listeners = new Set()
  let session = null

  client.auth.onAuthStateChange((event, next) => {
    const before = session?.access_token
    session = next
    // Only read the session here: calling back into supabase-js from this callback can deadlock its lock.
    if (event === 'TOKEN_REFRESHED' && next?.access_token !== before) emit('refreshed')
    else if (event === 'SIGNED_OUT') emit('signed-out')
  })
  // Waits for supabase-js to start: it restores this tab's session, or reads a magic link's #access_token and clears it.
  const { data } = await client.auth.getSession()
  session = data.session

  function emit (event) { for (const fn of listeners) fn(event) }

  async function dropSession (scope) {
    const { error } = await client.auth.signOut(scope ? { scope } : undefined)
    // supabase-js keeps the session when its logout call fails (network, 5xx): this tab signs out all the same.
    if (error) {
      try { sessionStorage.removeItem(client.auth.storageKey) } catch {}
    }
    session = null
    return { error }
  }

  return {
    mode: 'supabase',
    token: () => session?.access_token ?? null,
    email: () => session?.user?.email ?? null,
    async signInWithPassword (email, password) {
      const { data: result, error } = await client.auth.signInWithPassword({ email, password })
      if (!error) session = result.session
      return { error }
    },
    async sendMagicLink (email) {
      // Back to this same chat after the link is followed.
      const { error } = await client.auth.signInWithOtp({ email, options: { emailRedirectTo: location.href.split('#')[0] } })
      return { error }
    },
    signOut: () => dropSession(), // scope 'global', supabase-js's default: every device of this user
    forget: () => dropSession('local'),
    onChange (fn) { listeners.add(fn) }
  }
}
