/** The sessions sidebar and summary panel with a really ended, really summarised session; screenshots for the README. */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { eventually, startApp, TestClient, type RunningApp, storedEvents } from '../support/app.js'
import { describeWithBrowser, launchBrowser, openPage } from '../support/browser.js'
import {
  lastTurn, renderedText, sendMessage, sessionIdOf, squash, waitConnected
} from './helpers.js'

// Every run takes the screenshots; UPDATE_SCREENSHOTS=1 writes them over the README's copies in docs/.
const docs = fileURLToPath(new URL(process.env.UPDATE_SCREENSHOTS ? '../../docs/' : '../../test-results/screenshots/', import.meta.url))

interface SessionRecord { id: string; status: string; summary: string | null; summaryStatus: string; title: string | null }

describeWithBrowser('chat page sessions', () => {
  let browser: Browser
  let server: RunningApp
  let past: SessionRecord

  const record = async (id: string): Promise<SessionRecord> => (await fetch(`${server.baseUrl}/api/session/${id}`)).json() as Promise<SessionRecord>

  beforeAll(async () => {
    browser = await launchBrowser()
    server = await startApp({ env: { OFFLINE_TOKEN_DELAY_MS: '5', DISCONNECT_GRACE_MS: '50', SUMMARY_POLL_MS: '50' } })
    // A session that happened before the page was opened: asked, answered, closed, summarised.
    const id = `past-${Date.now()}`
    const client = await TestClient.connect(server.wsUrl(id))
    await client.waitFor((f) => f.type === 'session')
    client.send({ type: 'user_message', content: 'What is the CPU load?' })
    await client.waitTurnEnd()
    await client.close()
    past = await eventually(async () => {
      const r = await record(id)
      return r.summaryStatus === 'ready' ? r : null
    })
  })
  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })

  it('lists the past session with status, title and summary; opening it shows its history and the chat continues', async () => {
    expect(past).toMatchObject({ status: 'ended', title: 'What is the CPU load?' })
    expect(past.summary).toMatch(/CPU load/)
    const { page, problems, close } = await openPage(browser, server.baseUrl)
    try {
      await waitConnected(page)
      const fresh = sessionIdOf(page)
      expect(fresh).toMatch(/^[0-9a-f-]{36}$/)
      const item = page.locator(`a.session-link[data-session-id="${past.id}"]`)
      await item.waitFor()
      expect(await item.locator('.session-title').textContent()).toBe('What is the CPU load?')
      expect(await item.locator('.session-status').textContent()).toBe('Ended')
      expect(await item.locator('.session-summary').textContent()).toBe(past.summary)
      expect(await item.getAttribute('href')).toBe(`/?s=${past.id}`)

      await item.click()
      await page.waitForURL(`**/?s=${past.id}`)
      await waitConnected(page)
      expect(await page.locator(`a.session-link[data-session-id="${past.id}"]`).getAttribute('aria-current')).toBe('page')
      // History rebuilt from ?after=0: the question, the tool card and the stored answer.
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor()
      expect(await page.locator('.user-bubble').allTextContents()).toEqual(['What is the CPU load?'])
      expect(await page.locator(`${lastTurn} details.tool`).getAttribute('data-status')).toBe('ok')
      const stored = (await storedEvents(server, past.id)).filter((e) => e.type === 'assistant_message')
      expect(squash(await page.locator(`${lastTurn} .answer`).textContent() ?? '')).toBe(squash(await renderedText(page, stored[0].content)))
      // The summary panel shows the summary and the title is the session's.
      await page.locator('#summary').waitFor()
      expect(squash(await page.locator('#summary-body').textContent() ?? '')).toBe(squash(await renderedText(page, past.summary!)))
      expect(await page.locator('#chat-title').textContent()).toBe('What is the CPU load?')

      // The conversation goes on in the same session.
      await sendMessage(page, 'Show the profile of user alice')
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor({ timeout: 20_000 })
      expect(await page.locator('.turn').count()).toBe(2)
      expect(await page.locator(`${lastTurn} .tool-name`).textContent()).toBe('fetch_user_profile')
      expect(await page.locator(`${lastTurn} .answer`).textContent()).toMatch(/^User alice is /)
      expect((await storedEvents(server, past.id)).filter((e) => e.type === 'assistant_message')).toHaveLength(2)

      // Back goes to the chat the page started with: empty.
      await page.goBack()
      await page.waitForURL(`**/?s=${fresh}`)
      await waitConnected(page)
      expect(await page.locator('.turn').count()).toBe(0)
      expect(await page.locator('#empty-state').isVisible()).toBe(true)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })

  it('looks right at desktop and phone widths (screenshots), with the sidebar behind a button on phones', async () => {
    mkdirSync(docs, { recursive: true })
    const shots: Array<{ file: string; viewport: { width: number; height: number }; colorScheme: 'light' | 'dark'; top?: boolean }> = [
      { file: 'screenshot-desktop.png', viewport: { width: 1280, height: 800 }, colorScheme: 'light' },
      { file: 'screenshot-phone.png', viewport: { width: 390, height: 844 }, colorScheme: 'light' },
      { file: 'screenshot-dark.png', viewport: { width: 1280, height: 800 }, colorScheme: 'dark', top: true }
    ]
    for (const shot of shots) {
      const phone = shot.viewport.width < 600
      const { page, problems, close } = await openPage(browser, `${server.baseUrl}/?s=${past.id}`, {
        viewport: shot.viewport, colorScheme: shot.colorScheme, deviceScaleFactor: phone ? 2 : 1, isMobile: phone, hasTouch: phone
      })
      try {
        await waitConnected(page)
        await page.locator('.turn[data-state="done"]').nth(1).waitFor()
        await page.locator(`a.session-link[data-session-id="${past.id}"]`).waitFor({ state: 'attached' })
        const sidebar = page.locator('#sidebar')
        const menu = page.locator('#menu-button')
        if (phone) {
          expect(await menu.isVisible()).toBe(true)
          expect(await sidebar.evaluate((el) => el.getBoundingClientRect().right <= 0)).toBe(true)
          await menu.click()
          expect(await menu.getAttribute('aria-expanded')).toBe('true')
          await page.waitForFunction(() => document.querySelector('#sidebar')!.getBoundingClientRect().left >= 0)
          await page.keyboard.press('Escape')
          expect(await menu.getAttribute('aria-expanded')).toBe('false')
          await page.waitForFunction(() => document.querySelector('#sidebar')!.getBoundingClientRect().right <= 0)
        } else {
          expect(await menu.isVisible()).toBe(false)
          expect(await sidebar.isVisible()).toBe(true)
          if (!shot.top) await page.locator('.turn details.tool summary').last().click()
        }
        // Nothing wider than the viewport (no sideways scrolling on phones).
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(shot.viewport.width)
        await page.locator('#scroller').evaluate((el, top) => { el.scrollTop = top ? 0 : el.scrollHeight }, Boolean(shot.top))
        await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur())
        const png = await page.screenshot({ path: `${docs}${shot.file}` })
        expect(png.subarray(1, 4).toString()).toBe('PNG')
        expect(png.length).toBeGreaterThan(10_000)
        expect(problems).toEqual([])
      } finally {
        await close()
      }
    }
  })

  it('"Show older chats" pages through every session once, sessions that started in the same millisecond included', async () => {
    // 65 past chats, 4 started in each millisecond: page boundaries (30) fall inside groups of ties.
    const seeded = Array.from({ length: 65 }, (_, i) => `older-${String(i).padStart(2, '0')}`)
    await server.app.services.store.appendEvents(seeded.map((sessionId, i) => ({
      sessionId,
      event: { type: 'user_message' as const, seq: 1, ts: new Date(Date.UTC(2001, 0, 1) + Math.floor(i / 4)).toISOString(), turnId: 't', content: `chat ${i}` }
    })))
    const { page, problems, close } = await openPage(browser, server.baseUrl)
    try {
      await waitConnected(page)
      const more = page.locator('#more-sessions')
      const shown = async () => page.locator('a.session-link[data-session-id^="older-"]').evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.sessionId!))
      for (let clicks = 0; clicks < 5 && (await shown()).length < seeded.length; clicks++) {
        const before = (await shown()).length
        await more.click()
        await page.waitForFunction((n) => document.querySelectorAll('a.session-link[data-session-id^="older-"]').length > n, before)
      }
      const ids = await shown()
      expect(ids).toHaveLength(65)
      expect(new Set(ids).size).toBe(65)
      // Newest first; within a millisecond by id, descending.
      expect(ids).toEqual([...seeded].sort((a, b) => Math.floor(seeded.indexOf(b) / 4) - Math.floor(seeded.indexOf(a) / 4) || (a < b ? 1 : -1)))
      await page.waitForFunction(() => (document.querySelector('#more-sessions') as HTMLElement).hidden)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })
})
