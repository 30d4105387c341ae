/** Signing in and out (DESIGN §10): asks /auth/config how, checks the credential with /api/me, and tells the page when to show the chat. */
import { api, ApiError, useCredentials } from './api.js'
import { createAuth } from './auth.js'
import { createSignIn } from './sign-in.js'
import { createAccount } from './account.js'

const EXPIRED = 'Your sign-in has expired or was refused — sign in again.'
const UNREACHABLE = 'Could not reach the server. Try again.'

const refusedText = (err) => (err instanceof ApiError && err.status === 401
  ? 'That token or key was refused. Check it and try again.'
  : UNREACHABLE)

async function loadConfig () {
  for (let attempt = 0; ; attempt++) {
    try {
      return await api.authConfig()
    } catch (err) {
      if (attempt >= 2) throw err
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt))
    }
  }
}

/**
 * startAuth({ signIn, account, on }) where `on` has
 *   signedIn(session): show the chat; session = { token(), refused?() } (refused: the server closed 4401)
 *   signedOut(): hide it and close its socket
 *   refreshed(token): hand the live socket its new token
 *   switched(): a replacement token names another principal, so the open chat is no longer theirs
 * With auth off (or a server without /auth/config) signedIn runs at once and no sign-in UI appears.
 */
export async function startAuth ({ signIn: signInRoot, account: accountRoot, on }) {
  let auth
  let state = 'out' // 'out' | 'checking' | 'in'
  let who = null

  const signIn = createSignIn({
    root: signInRoot,
    on: {
      async token (token) {
        let me
        try { me = await api.me(token) } catch (err) { return { error: refusedText(err) } }
        auth.useToken(token)
        enterAs(me)
        return {}
      },
      async password (email, password) {
        const { error } = await auth.signInWithPassword(email, password)
        if (error) return { error: error.message || 'Sign-in failed.' }
        return enter()
      },
      async magicLink (email) {
        const { error } = await auth.sendMagicLink(email)
        if (error) return { error: error.message || 'Could not send the link.' }
        return { sent: `Check your email: a sign-in link is on its way to ${email}.` }
      }
    }
  })

  const account = createAccount({
    root: accountRoot,
    on: {
      signOut,
      async replaceToken (token) {
        let me
        try { me = await api.me(token) } catch (err) { return { error: refusedText(err) } }
        const same = me.principal === who?.principal
        auth.useToken(token)
        showAccount(me)
        if (same) on.refreshed(token)
        else on.switched()
        return {}
      }
    }
  })

  function showAccount (me) {
    who = me
    account.show({ name: auth.email() ?? me.principal, principal: me.principal, canReplace: auth.mode === 'token' })
  }

  /** Checks the credential the auth source holds; a 401 lands in refused() through the api hook. */
  async function enter () {
    state = 'checking'
    let me
    try {
      me = await api.me()
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return {}
      state = 'out'
      return { error: UNREACHABLE }
    }
    enterAs(me)
    return {}
  }

  function enterAs (me) {
    state = 'in'
    signIn.hide()
    showAccount(me)
    on.signedIn({ token: () => auth.token(), refused })
  }

  function leave () {
    state = 'out'
    who = null
    account.hide()
    on.signedOut()
  }

  async function refused () {
    if (state === 'out') return
    leave()
    await auth.forget()
    signIn.show({ mode: auth.mode, notice: EXPIRED })
  }

  async function signOut () {
    if (state !== 'in') return
    leave()
    await auth.signOut()
    signIn.show({ mode: auth.mode })
  }

  try {
    const config = await loadConfig()
    if (!config.enabled) {
      on.signedIn({ token: () => null })
      return
    }
    auth = await createAuth(config)
  } catch {
    signIn.show({ mode: 'none', notice: 'Could not reach the server. Reload the page to try again.' })
    return
  }
  useCredentials({ token: () => auth.token(), unauthenticated: () => refused() })
  auth.onChange((event) => {
    if (state !== 'in') return
    if (event === 'refreshed') on.refreshed(auth.token())
    else if (event === 'signed-out') refused()
  })
  if (auth.token()) await enter()
  else signIn.show({ mode: auth.mode })
}
