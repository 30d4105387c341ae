/** Reload and network blips in the middle of an answer: the page rebuilds or resumes, and no text appears twice. */
import type { Browser, WebSocketRoute } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startApp, type RunningApp, storedEvents } from '../support/app.js'
import { describeWithBrowser, launchBrowser, openPage } from '../support/browser.js'
import {
  count, lastTurn, readWatch, renderedText, sendMessage, sessionIdOf, squash, waitConnected, waitStoredAnswers, watchAnswer
} from './helpers.js'

const PROMPT = 'Tell me a story about resuming'
const answerLongerThan = ([sel, n]: [string, number]) => (document.querySelector(sel)?.textContent ?? '').length > n

describeWithBrowser('chat page resume', () => {
  let browser: Browser
  let server: RunningApp

  beforeAll(async () => {
    browser = await launchBrowser()
    // Slow tokens so the answer is surely still running when the page reloads or the socket drops.
    server = await startApp({ env: { OFFLINE_TOKEN_DELAY_MS: '60' } })
  })
  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })

  it('a reload mid-answer shows the conversation again and the answer completes with no text twice', async () => {
    const sockets: string[] = []
    const { page, problems, close } = await openPage(browser, server.baseUrl, {
      beforeGoto: async (p) => { p.on('websocket', (ws) => sockets.push(ws.url())) }
    })
    try {
      await waitConnected(page)
      const sessionId = sessionIdOf(page)
      await sendMessage(page, PROMPT)
      await page.waitForFunction(answerLongerThan, [`${lastTurn} .answer`, 30] as [string, number])
      const before = await page.locator(`${lastTurn} .answer`).textContent() ?? ''

      await page.reload()
      expect(sessionIdOf(page)).toBe(sessionId)
      await waitConnected(page)
      await watchAnswer(page)
      // The rebuilt conversation: the question, and the same answer still streaming.
      await page.locator(`${lastTurn}[data-state="running"]`).waitFor()
      expect(await page.locator(`${lastTurn} .user-bubble`).textContent()).toBe(PROMPT)
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor({ timeout: 20_000 })

      expect(sockets).toHaveLength(2)
      expect(new URL(sockets[1]).searchParams.get('after')).toBe('0')
      const [stored] = await waitStoredAnswers(server, sessionId, 1)
      expect(stored.finishReason).toBe('stop')
      const shown = await page.locator(`${lastTurn} .answer`).textContent() ?? ''
      expect(squash(shown)).toBe(squash(await renderedText(page, stored.content)))
      expect(shown.startsWith(before.trimEnd())).toBe(true)
      expect(count(shown, 'I am the built-in offline model')).toBe(1)
      expect(count(shown, 'restart the server.')).toBe(1)
      expect(await page.locator('.turn').count()).toBe(1)
      expect(await page.locator('.user-bubble').allTextContents()).toEqual([PROMPT])
      // After the reload the answer kept growing in the DOM (it was not just replaced at the end).
      const { lengths } = await readWatch(page)
      expect(lengths.length).toBeGreaterThanOrEqual(2)
      for (let i = 1; i < lengths.length; i++) expect(lengths[i]).toBeGreaterThan(lengths[i - 1])
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })

  it('a dropped socket mid-answer reconnects with ?after=<last seq seen> and the answer continues without duplicates', async () => {
    const routes: WebSocketRoute[] = []
    const { page, problems, close } = await openPage(browser, server.baseUrl, {
      beforeGoto: (p) => p.routeWebSocket(/\/ws\/session\//, (ws) => {
        routes.push(ws)
        ws.connectToServer()
      })
    })
    try {
      await waitConnected(page)
      const sessionId = sessionIdOf(page)
      await watchAnswer(page)
      await sendMessage(page, PROMPT)
      await page.waitForFunction(answerLongerThan, [`${lastTurn} .answer`, 30] as [string, number])

      // The network blips: both ends of the socket go away mid-answer.
      expect(routes).toHaveLength(1)
      await routes[0].close({ code: 4001, reason: 'network blip' })
      await page.locator('#conn:not([data-state="open"])').waitFor()
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor({ timeout: 20_000 })

      expect(routes).toHaveLength(2)
      const after = Number(new URL(routes[1].url()).searchParams.get('after'))
      const events = await storedEvents(server, sessionId)
      const question = events.find((e) => e.type === 'user_message')!
      expect(after).toBeGreaterThanOrEqual(question.seq)
      expect(after).toBeLessThan(events.find((e) => e.type === 'assistant_message')!.seq)

      const [stored] = await waitStoredAnswers(server, sessionId, 1)
      expect(stored.finishReason).toBe('stop')
      const shown = await page.locator(`${lastTurn} .answer`).textContent() ?? ''
      expect(squash(shown)).toBe(squash(await renderedText(page, stored.content)))
      expect(count(shown, 'restart the server.')).toBe(1)
      const { lengths } = await readWatch(page)
      for (let i = 1; i < lengths.length; i++) expect(lengths[i]).toBeGreaterThan(lengths[i - 1])
      expect(await page.locator('.turn').count()).toBe(1)
      expect(await page.locator('#conn').getAttribute('data-state')).toBe('open')
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })
})
