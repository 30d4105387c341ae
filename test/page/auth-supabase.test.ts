/** Signing in from the page through Supabase Auth (DESIGN §10) in real Chromium, against a GoTrue stand-in: password, magic link, refresh, sign-out. */
import { randomUUID } from 'node:crypto'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { eventually } from '../support/app.js'
import { describeWithBrowser } from '../support/browser.js'
import { startSupabaseAuthStandIn, type SupabaseAuthStandIn } from '../support/supabase-auth-stand-in.js'
import { authFrames, besidesRefusals, chatOnce, openWatched, socketsOf, storageOf } from './auth-helpers.js'
import { lastTurn, pageServer, sessionIdOf, squash, waitConnected } from './helpers.js'

describeWithBrowser('sign-in page, Supabase mode', () => {
  const ANON_KEY = 'stand-in-anon-key'
  const env: Record<string, string> = {}
  let auth: SupabaseAuthStandIn | undefined
  // Runs before pageServer's hook: the server under test is told where the stand-in listens.
  beforeAll(async () => {
    auth = await startSupabaseAuthStandIn({ anonKey: ANON_KEY })
    Object.assign(env, {
      AUTH_JWKS_URL: auth.jwksUrl,
      AUTH_JWT_AUDIENCE: 'authenticated',
      AUTH_JWT_ISSUER: auth.issuer,
      AUTH_JWKS_COOLDOWN_MS: '0',
      SUPABASE_URL: auth.url,
      SUPABASE_ANON_KEY: ANON_KEY,
      OFFLINE_TOKEN_DELAY_MS: '5'
    })
  })
  const ctx = pageServer({ env })
  afterAll(async () => { await auth?.close() })
  const standIn = () => auth!

  async function signIn (page: Page, email: string, password: string): Promise<void> {
    await page.locator('#email-input').fill(email)
    await page.locator('#password-input').fill(password)
    await page.locator('#password-form button[type="submit"]').click()
  }

  const grants = (type: string) => standIn().requests.filter((r) => r.path === '/token' && r.query.grant_type === type)

  it('a wrong password shows the error and opens no socket; the right one signs in by email, chats, and survives a reload', async () => {
    const user = standIn().addUser({ email: 'ada@example.com', password: 'correct horse battery' })
    const { page, problems, requests, api, close } = await openWatched(ctx.browser, ctx.server.baseUrl)
    try {
      await page.locator('#email-input').waitFor()
      expect(requests.filter((u) => u.endsWith('/vendor/supabase.js'))).toHaveLength(1)
      expect(await page.locator('#token-form').isHidden()).toBe(true)
      expect(await page.getByLabel('Password', { exact: true }).isVisible()).toBe(true)
      expect(await page.getByRole('button', { name: 'Email me a link' }).isVisible()).toBe(true)

      await signIn(page, user.email, 'wrong password')
      await page.locator('#signin-notice').waitFor()
      expect(await page.locator('#signin-notice').textContent()).toBe('Invalid login credentials')
      expect(await socketsOf(page)).toEqual([])
      expect(api).toEqual([])
      const [refused] = grants('password')
      expect(refused.body).toMatchObject({ email: user.email, password: 'wrong password' })
      expect(refused.headers.apikey).toBe(ANON_KEY)

      await signIn(page, user.email, user.password)
      await waitConnected(page)
      expect(grants('password')).toHaveLength(2)
      const token = standIn().issued.at(-1)!
      expect(await page.locator('#account-name').textContent()).toBe(user.email)
      expect(await page.locator('#account-name').getAttribute('title')).toBe(user.id) // the principal: the JWT's sub
      expect(await page.locator('#replace-token').isHidden()).toBe(true)
      expect(new URL((await socketsOf(page))[0].url).searchParams.get('access_token')).toBe(token)
      const answer = await chatOnce(page, ctx.server, () => token)
      expect(api[0]).toBe(`/api/me Bearer ${token}`)
      for (const call of api) expect(call.endsWith(` Bearer ${token}`), call).toBe(true)

      // supabase-js keeps its session in this tab's sessionStorage: a reload is still signed in.
      await page.reload()
      await waitConnected(page)
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor()
      expect(await page.locator('#account-name').textContent()).toBe(user.email)
      expect(squash(await page.locator(`${lastTurn} .answer`).textContent() ?? '')).toBe(squash(answer))
      expect(grants('password')).toHaveLength(2)
      const stored = await storageOf(page)
      expect(stored.href).not.toContain(token)
      expect(stored.local).not.toContain(token)
      expect(stored.cookie).toBe('')
      expect(stored.session).toContain(token)
      expect(besidesRefusals(problems)).toEqual([])
      expect(problems.length - besidesRefusals(problems).length).toBe(1) // the wrong password's 400, once
    } finally {
      await close()
    }
  })

  it('the magic-link form posts the email to /otp and says to check your email; the link signs the tab in', async () => {
    const email = 'grace.hopper@example.com'
    // Opened from a link to a chat: the magic link brings the reader back to that same chat.
    const chatId = randomUUID()
    const pageUrl = `${ctx.server.baseUrl}/?s=${chatId}`
    const { page, problems, close } = await openWatched(ctx.browser, pageUrl)
    try {
      await page.locator('#magic-email').waitFor()
      await page.locator('#magic-email').fill(email)
      await page.getByRole('button', { name: 'Email me a link' }).click()
      await page.locator('#magic-sent').waitFor()
      expect(await page.locator('#magic-sent').textContent()).toBe(`Check your email: a sign-in link is on its way to ${email}.`)
      const otp = standIn().requests.filter((r) => r.path === '/otp')
      expect(otp).toHaveLength(1)
      expect(otp[0].method).toBe('POST')
      expect(otp[0].body).toMatchObject({ email, create_user: true })
      expect(otp[0].query.redirect_to).toBe(pageUrl)
      expect(otp[0].headers.apikey).toBe(ANON_KEY)
      expect(await socketsOf(page)).toEqual([])
      expect(await page.locator('#app').isHidden()).toBe(true)

      // Following the link: GoTrue redirects back to the page with the session in the fragment.
      await page.goto(standIn().magicLink(email)!)
      await waitConnected(page)
      const token = standIn().issued.at(-1)!
      expect(await page.locator('#account-name').textContent()).toBe(email)
      expect(new URL((await socketsOf(page))[0].url).searchParams.get('access_token')).toBe(token)
      // supabase-js took the session out of the fragment and cleared it.
      expect(page.url()).not.toContain(token)
      expect(new URL(page.url()).hash).toBe('')
      expect(sessionIdOf(page)).toBe(chatId)
      expect((await storageOf(page)).local).not.toContain(token)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })

  it('a refreshed token, signed with a rotated key, goes to the live socket as an auth frame', async () => {
    // 60 s tokens: inside supabase-js's 90 s refresh margin, so it refreshes when the tab becomes visible again.
    const user = standIn().addUser({ email: 'lin@example.com', password: 'a long enough password', expiresIn: 60 })
    const { page, problems, sent, api, close } = await openWatched(ctx.browser, ctx.server.baseUrl)
    try {
      await signIn(page, user.email, user.password)
      await waitConnected(page)
      const first = standIn().issued.at(-1)!
      const refreshesBefore = grants('refresh_token').length
      await standIn().rotateKey()

      await page.evaluate(() => window.dispatchEvent(new Event('visibilitychange')))
      const frames = await eventually(() => {
        const got = authFrames(sent)
        const latest = standIn().issued.at(-1)
        return got.length > 0 && latest !== first && got.at(-1)!.token === latest ? got : null
      })
      expect(grants('refresh_token').length).toBeGreaterThan(refreshesBefore)
      for (const f of frames) {
        expect(f.token).not.toBe(first)
        expect(standIn().issued).toContain(f.token)
      }
      const refreshed = frames.at(-1)!.token
      // The same socket carries on with the refreshed token: the server took it (frames are handled in order).
      await chatOnce(page, ctx.server, () => refreshed)
      const sockets = await socketsOf(page)
      expect(sockets).toHaveLength(1)
      expect(sockets[0].close).toBeNull()
      expect(api.at(-1)).toMatch(new RegExp(` Bearer ${refreshed.replace(/\./g, '\\.')}$`))
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })

  it('sign out calls the logout endpoint and returns to the form with no session left in the tab', async () => {
    const user = standIn().addUser({ email: 'ken@example.com', password: 'another long password' })
    const { page, problems, close } = await openWatched(ctx.browser, ctx.server.baseUrl)
    try {
      await signIn(page, user.email, user.password)
      await waitConnected(page)
      const token = standIn().issued.at(-1)!
      expect((await storageOf(page)).session).toContain(token)
      const logoutsBefore = standIn().requests.filter((r) => r.path === '/logout').length

      await page.getByRole('button', { name: 'Sign out' }).click()
      await page.locator('#email-input').waitFor()
      const logouts = standIn().requests.filter((r) => r.path === '/logout').slice(logoutsBefore)
      expect(logouts).toHaveLength(1)
      expect(logouts[0].method).toBe('POST')
      expect(logouts[0].query.scope).toBe('global')
      expect(logouts[0].headers.authorization).toBe(`Bearer ${token}`)
      expect(await page.locator('#app').isHidden()).toBe(true)
      expect(await page.locator('#signin-notice').isHidden()).toBe(true)
      expect(await page.locator('#password-input').inputValue()).toBe('')
      const stored = await storageOf(page)
      expect(stored.session).not.toContain(token)
      expect(stored.sessionKeys.filter((k) => k.startsWith('sb-'))).toEqual([])
      // Closed by the page (1000), and no other socket since.
      const closed = await eventually(async () => { const all = await socketsOf(page); return all.every((x) => x.close !== null) ? all : null })
      expect(closed.map((s) => s.close)).toEqual([1000])
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })
})
