/** Hostile model output through the real openai SDK and the fake Chat Completions server: shown inert, nothing runs or loads. */
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startApp, type RunningApp } from '../support/app.js'
import { describeWithBrowser, launchBrowser, openPage } from '../support/browser.js'
import { startFakeOpenAI, sse, textChunks, type FakeOpenAI } from '../support/fake-openai.js'
import { lastTurn, sendMessage, sessionIdOf, waitConnected, waitStoredAnswers } from './helpers.js'

const HOSTILE = [
  'Here is **bold** text and some markup:',
  '',
  '<img src=x onerror="window.__pwned=\'block img\'">',
  '',
  '<script>window.__pwned = \'script\'</script>',
  '',
  'Inline <img src=x onerror=window.__pwned=1> and <iframe src="javascript:window.__pwned=2"></iframe> and <svg onload="window.__pwned=3"></svg>',
  '',
  '[click me](javascript:window.__pwned=4) or <a href="javascript:window.__pwned=5">raw link</a> or ![picture](x)',
  '',
  '```js',
  "const s = '<script>alert(1)</script>'",
  '```',
  ''
].join('\n')

const USER_TEXT = '<img src=x onerror="window.__pwned=6"> is this safe?'

describeWithBrowser('chat page sanitising', () => {
  let browser: Browser
  let fake: FakeOpenAI
  let server: RunningApp

  beforeAll(async () => {
    browser = await launchBrowser()
    fake = await startFakeOpenAI()
    server = await startApp({
      env: { LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'test-key', OPENAI_BASE_URL: fake.url, LLM_MODEL: 'fake-model', LLM_MAX_RETRIES: '0' }
    })
  })
  afterAll(async () => {
    await browser?.close()
    await server?.close()
    await fake?.close()
  })

  it('renders <img onerror>, <script> and javascript: links from the model as inert text or sanitised markup', async () => {
    // Seven characters a chunk: tags arrive cut in pieces, and every partial render is sanitised too.
    fake.script(sse(textChunks(HOSTILE, { perChunk: 7 }), { delayMs: 5 }))
    const { page, problems, requests, close } = await openPage(browser, server.baseUrl)
    try {
      await waitConnected(page)
      expect(await page.locator('#model-badge').textContent()).toMatch(/^openai(-compatible)? · fake-model$/)
      await sendMessage(page, USER_TEXT)
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor({ timeout: 20_000 })
      const [stored] = await waitStoredAnswers(server, sessionIdOf(page), 1)
      expect(stored.content).toBe(HOSTILE)
      expect((await fake.request(0)).body.messages.at(-1)).toEqual({ role: 'user', content: USER_TEXT })

      const answer = page.locator(`${lastTurn} .answer`)
      // Raw HTML is shown as the text the model wrote.
      const text = await answer.textContent() ?? ''
      expect(text).toContain('<img src=x onerror="window.__pwned=\'block img\'">')
      expect(text).toContain("<script>window.__pwned = 'script'</script>")
      expect(await answer.locator('strong').textContent()).toBe('bold')
      for (const tag of ['img', 'script', 'iframe', 'svg']) expect(await answer.locator(tag).count()).toBe(0)
      expect(await page.locator('[onerror], [onload]').count()).toBe(0)
      // Links: no javascript: href survives; the markdown image became a plain link.
      const hrefs = await answer.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')))
      expect(hrefs.some((h) => h !== null && /^\s*javascript:/i.test(h))).toBe(false)
      await answer.getByText('click me').click()
      // The code block is code, with its text intact.
      expect(await answer.locator('.code-block pre code').textContent()).toBe("const s = '<script>alert(1)</script>'\n")
      // The user's own text is text.
      expect(await page.locator(`${lastTurn} .user-bubble`).textContent()).toBe(USER_TEXT)

      expect(await page.evaluate(() => (window as any).__pwned)).toBeUndefined()
      expect(requests.filter((u) => new URL(u).pathname === '/x')).toEqual([])
      expect(page.url()).toContain('/?s=')
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })
})
