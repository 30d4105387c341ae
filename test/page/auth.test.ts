/** Signing in from the page with a pasted token or API key (DESIGN §10) in real Chromium: expiry, refusals, sign-out, a replaced token, 4403; and no sign-in with auth off. */
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import type { Page } from 'playwright-core'
import { expect, it } from 'vitest'
import { eventually, TestClient } from '../support/app.js'
import { describeWithBrowser } from '../support/browser.js'
import { EXPIRED, PROMPT, authFrames, besidesRefusals, chatOnce, openWatched, socketsOf, storageOf } from './auth-helpers.js'
import { lastTurn, pageServer, sendMessage, sessionIdOf, squash, waitConnected } from './helpers.js'

// Every timer the page may have set (a reconnect backoff is at most 15 s) fires within this much fake time.
const LONGER_THAN_ANY_BACKOFF = 60_000

describeWithBrowser('sign-in page, token mode', () => {
  const SECRET = 'page-test-secret-0123456789-abcdefghij'
  const API_KEY = 'ci-key-0123456789abcdef'
  const ctx = pageServer({ env: { AUTH_JWT_SECRET: SECRET, API_KEYS: `ci:${API_KEY}`, OFFLINE_TOKEN_DELAY_MS: '5' } })

  /** An HS256 token for `sub`, valid for `ttl` (jose's '5m') or until the epoch second `ttl`. */
  const jwt = (sub: string, ttl: string | number = '5m') => new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(ttl)
    .sign(new TextEncoder().encode(SECRET))

  async function signIn (page: Page, token: string): Promise<void> {
    await page.getByLabel('Access token or API key', { exact: true }).fill(token)
    await page.locator('#token-form button[type="submit"]').click()
  }

  async function replaceToken (page: Page, token: string): Promise<void> {
    await page.getByRole('button', { name: 'Replace token' }).click()
    await page.getByLabel('New access token or API key').fill(token)
    await page.getByRole('button', { name: 'Use this token' }).click()
  }

  it('asks for a token instead of showing the chat; signed in it chats, and a reload in the tab stays signed in and replays', async () => {
    const token = await jwt('alice')
    const { page, problems, requests, api, close } = await openWatched(ctx.browser, ctx.server.baseUrl)
    try {
      await page.locator('#token-input').waitFor()
      expect(await page.locator('#app').isHidden()).toBe(true)
      expect(await page.locator('#password-form').isHidden()).toBe(true)
      expect(await page.locator('#magic-form').isHidden()).toBe(true)
      expect(await socketsOf(page)).toEqual([])
      expect(api).toEqual([])
      expect(requests.some((u) => u.includes('/vendor/supabase.js'))).toBe(false)

      await signIn(page, token)
      await waitConnected(page)
      expect(await page.locator('#signin').isHidden()).toBe(true)
      expect(await page.locator('#account-name').textContent()).toBe('alice')
      expect(await page.getByRole('button', { name: 'Sign out' }).isVisible()).toBe(true)
      const sessionId = sessionIdOf(page)
      const answer = await chatOnce(page, ctx.server, () => token)

      await page.reload()
      await waitConnected(page)
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor()
      expect(sessionIdOf(page)).toBe(sessionId)
      expect(await page.locator('#signin').isHidden()).toBe(true)
      expect(await page.locator('#account-name').textContent()).toBe('alice')
      expect(await page.locator('.user-bubble').allTextContents()).toEqual([PROMPT])
      expect(squash(await page.locator(`${lastTurn} .answer`).textContent() ?? '')).toBe(squash(answer))

      // The socket after the reload: the token in its query (browsers cannot set headers), replaying from 0.
      const sockets = await socketsOf(page)
      expect(sockets).toHaveLength(1)
      const wsUrl = new URL(sockets[0].url)
      expect(wsUrl.searchParams.get('access_token')).toBe(token)
      expect(wsUrl.searchParams.get('after')).toBe('0')
      // Kept in this tab's sessionStorage only: not in the URL, localStorage or a cookie.
      const stored = await storageOf(page)
      expect(stored.href).not.toContain(token)
      expect(stored.local).not.toContain(token)
      expect(stored.cookie).not.toContain(token)
      expect(stored.session).toContain(token)
      // Every REST call carried it as a bearer token, the first one checking who it names.
      expect(api[0]).toBe(`/api/me Bearer ${token}`)
      expect(api.filter((c) => c.startsWith('/api/me '))).toHaveLength(2) // sign-in, reload
      expect(api.some((c) => c.startsWith('/api/sessions '))).toBe(true)
      for (const call of api) expect(call.endsWith(` Bearer ${token}`), call).toBe(true)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })

  it('a token that expires under an open socket: close 4401, the page says so, shows the sign-in and does not reconnect', async () => {
    const token = await jwt('carol', '6s')
    const { page, problems, close } = await openWatched(ctx.browser, ctx.server.baseUrl, { clock: true })
    try {
      await signIn(page, token)
      await waitConnected(page)
      expect(await page.locator('#account-name').textContent()).toBe('carol')

      // The server closes the socket at the token's expiry.
      await page.locator('#signin-notice').waitFor({ timeout: 10_000 })
      expect(await page.locator('#signin-notice').textContent()).toBe(EXPIRED)
      expect(await page.getByLabel('Access token or API key', { exact: true }).isVisible()).toBe(true)
      expect(await page.locator('#app').isHidden()).toBe(true)

      await page.clock.runFor(LONGER_THAN_ANY_BACKOFF)
      expect((await socketsOf(page)).map((s) => s.close)).toEqual([4401])
      expect((await storageOf(page)).session).not.toContain(token)
      expect(besidesRefusals(problems)).toEqual([])
    } finally {
      await close()
    }
  })

  it('a refused token never opens a socket and is not kept; an API key signs in as apikey:<name>', async () => {
    const { page, problems, api, close } = await openWatched(ctx.browser, ctx.server.baseUrl)
    try {
      const forged = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('mallory').setExpirationTime('5m')
        .sign(new TextEncoder().encode('another-secret-0123456789-abcdefghijkl'))
      for (const bad of ['not-a-token', forged]) {
        await signIn(page, bad)
        await page.locator('#token-form:not([aria-busy])').waitFor() // the check is over
        expect(await page.locator('#signin-notice').textContent()).toBe('That token or key was refused. Check it and try again.')
        expect((await storageOf(page)).session).not.toContain(bad)
      }
      expect(api).toEqual(['/api/me Bearer not-a-token', `/api/me Bearer ${forged}`])
      expect(await socketsOf(page)).toEqual([])
      expect(await page.locator('#app').isHidden()).toBe(true)

      await signIn(page, API_KEY)
      await waitConnected(page)
      expect(await page.locator('#account-name').textContent()).toBe('apikey:ci')
      expect(await page.locator('#signin-notice').isHidden()).toBe(true)
      expect(await socketsOf(page)).toHaveLength(1)
      expect(besidesRefusals(problems)).toEqual([])
    } finally {
      await close()
    }
  })

  it('sign out closes the socket, shows the sign-in again and leaves no token in the tab', async () => {
    const token = await jwt('dave')
    const { page, problems, close } = await openWatched(ctx.browser, ctx.server.baseUrl)
    try {
      await signIn(page, token)
      await waitConnected(page)
      expect((await storageOf(page)).session).toContain(token)

      await page.getByRole('button', { name: 'Sign out' }).click()
      await page.getByLabel('Access token or API key', { exact: true }).waitFor()
      expect(await page.locator('#app').isHidden()).toBe(true)
      expect(await page.locator('#signin-notice').isHidden()).toBe(true)
      expect(await page.locator('#token-input').inputValue()).toBe('')
      const stored = await storageOf(page)
      expect(stored.session).not.toContain(token)
      expect(stored.sessionKeys).toEqual([])
      // Closed by the page (1000), and no other socket since.
      const closed = await eventually(async () => { const all = await socketsOf(page); return all.every((x) => x.close !== null) ? all : null })
      expect(closed.map((s) => s.close)).toEqual([1000])

      // Nothing left to sign in with after a reload either.
      await page.reload()
      await page.getByLabel('Access token or API key', { exact: true }).waitFor()
      expect(await page.locator('#app').isHidden()).toBe(true)
      expect(await socketsOf(page)).toEqual([])
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })

  it('a new token pasted while signed in goes to the live socket as an auth frame and outlives the first one', async () => {
    // Room for signing in on a loaded two-core machine before the first token expires (3 s was seen to be too little).
    const expiry = Math.floor(Date.now() / 1000) + 8
    const first = await jwt('erin', expiry)
    const second = await jwt('erin', '5m')
    const { page, problems, sent, api, close } = await openWatched(ctx.browser, ctx.server.baseUrl)
    let control: TestClient | undefined
    try {
      await signIn(page, first)
      await waitConnected(page)
      // A socket of erin's whose token is never replaced, expiring a second after the first: its close says the first has expired too.
      const url = new URL(ctx.server.wsUrl(randomUUID()))
      url.searchParams.set('access_token', await jwt('erin', expiry + 1))
      control = await TestClient.connect(url.toString())

      await replaceToken(page, second)
      await eventually(() => authFrames(sent).length > 0)
      expect(authFrames(sent)).toEqual([{ type: 'auth', token: second }])
      expect(await page.locator('#replace-form').isHidden()).toBe(true)
      expect(await page.locator('#account-name').textContent()).toBe('erin')

      expect((await control.closed).code).toBe(4401)
      const sockets = await socketsOf(page)
      expect(sockets).toHaveLength(1)
      expect(sockets[0].close).toBeNull()
      await chatOnce(page, ctx.server, () => second)
      expect(await socketsOf(page)).toHaveLength(1)
      expect(api.at(-1)).toMatch(new RegExp(` Bearer ${second.replace(/\./g, '\\.')}$`))
      expect(await page.locator('#signin').isHidden()).toBe(true)
      expect(problems).toEqual([])
    } finally {
      await control?.close()
      await close()
    }
  })

  it("another user's token opens a new chat; opening the first user's chat is refused 4403 with a way to start a new one", async () => {
    const frank = await jwt('frank')
    const grace = await jwt('grace')
    const { page, problems, sent, close } = await openWatched(ctx.browser, ctx.server.baseUrl, { clock: true })
    try {
      await signIn(page, frank)
      await waitConnected(page)
      await chatOnce(page, ctx.server, () => frank)
      const franksChat = sessionIdOf(page)

      await replaceToken(page, grace)
      await page.locator('#account-name:text-is("grace")').waitFor()
      await waitConnected(page)
      expect(sessionIdOf(page)).not.toBe(franksChat)
      expect(authFrames(sent)).toEqual([]) // a new principal is a new chat, not a token swap on frank's socket
      const sockets = await eventually(async () => { const all = await socketsOf(page); return all[0]?.close !== null ? all : null })
      expect(sockets.map((s) => s.close)).toEqual([1000, null])
      expect(new URL(sockets[1].url).searchParams.get('access_token')).toBe(grace)
      expect(await page.locator('.turn').count()).toBe(0)

      await page.goto(`${ctx.server.baseUrl}/?s=${franksChat}`)
      const notice = page.locator('#notice')
      await notice.waitFor()
      expect(await notice.locator('.notice-text').textContent()).toBe('This chat belongs to someone else. Start a new chat to continue.')
      expect(await page.locator('.turn').count()).toBe(0)
      await page.clock.runFor(LONGER_THAN_ANY_BACKOFF)
      expect((await socketsOf(page)).map((s) => s.close)).toEqual([4403])
      expect(await page.locator('#conn').getAttribute('data-state')).toBe('failed')

      await notice.getByRole('button', { name: 'Start a new chat' }).click()
      await waitConnected(page)
      expect(sessionIdOf(page)).not.toBe(franksChat)
      expect((await socketsOf(page)).map((s) => s.close)).toEqual([4403, null])
      expect(await notice.isHidden()).toBe(true)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })
})

describeWithBrowser('sign-in page, auth off', () => {
  const ctx = pageServer({ env: {} })

  it('shows no sign-in at all, loads no supabase.js and presents no token', async () => {
    const { page, problems, requests, api, close } = await openWatched(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      expect(await page.locator('#signin').isHidden()).toBe(true)
      expect(await page.locator('#account').isHidden()).toBe(true)
      expect(requests.some((u) => u.includes('/vendor/supabase.js'))).toBe(false)
      const [socket] = await socketsOf(page)
      expect(new URL(socket.url).searchParams.has('access_token')).toBe(false)
      await sendMessage(page, PROMPT)
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor({ timeout: 20_000 })
      expect(api.every((c) => c.endsWith(' (none)'))).toBe(true)
      expect(api.some((c) => c.startsWith('/api/me '))).toBe(false)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })
})
