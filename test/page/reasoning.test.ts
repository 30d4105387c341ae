/** The page's collapsed "Thinking" block in real Chromium, fed by the offline model's reasoning (no key needed). */
import { expect, it } from 'vitest'
import { describeWithBrowser, openPage } from '../support/browser.js'
import { lastTurn, pageServer, sendMessage, sessionIdOf, squash, waitConnected, waitStoredAnswers } from './helpers.js'

describeWithBrowser('thinking block', () => {
  // Slow tokens, so the block is surely seen while it streams.
  const ctx = pageServer({ env: { OFFLINE_TOKEN_DELAY_MS: '60' } })

  it('streams reasoning into a collapsed Thinking block that opens on click, and keeps it after a reload', async () => {
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      const sessionId = sessionIdOf(page)
      await sendMessage(page, 'hello there')
      const block = page.locator(`${lastTurn} details.reasoning`)
      // Seen while it streams: visible, labelled, closed, its answer not begun.
      await page.locator(`${lastTurn} details.reasoning[data-state="streaming"]:not([hidden])`).waitFor()
      expect(await block.locator('summary').textContent()).toBe('Thinking')
      expect(await block.evaluate((el) => (el as HTMLDetailsElement).open)).toBe(false)
      expect(await block.locator('.reasoning-text').isVisible()).toBe(false)
      expect(await page.locator(`${lastTurn} .answer`).textContent()).toBe('')

      await block.locator('summary').click()
      expect(await block.evaluate((el) => (el as HTMLDetailsElement).open)).toBe(true)
      expect(await block.locator('.reasoning-text').isVisible()).toBe(true)
      const partial = await block.locator('.reasoning-text').textContent() ?? ''
      expect(partial.length).toBeGreaterThan(0)

      await page.locator(`${lastTurn}[data-state="done"]`).waitFor({ timeout: 20_000 })
      const [stored] = await waitStoredAnswers(ctx.server, sessionId, 1)
      expect(stored.reasoning).toBe('No tool fits this message, so I will give the canned offline reply.')
      expect(stored.reasoning.startsWith(partial)).toBe(true)
      expect(await block.getAttribute('data-state')).toBe('done')
      expect(await block.locator('.reasoning-text').textContent()).toBe(stored.reasoning)
      // The reasoning is not in the answer, and the answer is not in the block.
      expect(await page.locator(`${lastTurn} .answer`).textContent()).not.toContain('No tool fits')
      expect(squash(await page.locator(`${lastTurn} .answer`).textContent() ?? '')).toContain('I am the built-in offline model')
      expect(await page.locator(`${lastTurn} details.reasoning`).count()).toBe(1)

      // After a reload the stored whole comes back, collapsed again.
      await page.reload()
      await waitConnected(page)
      await page.locator(`${lastTurn}[data-state="done"] details.reasoning:not([hidden])`).waitFor()
      expect(await block.evaluate((el) => (el as HTMLDetailsElement).open)).toBe(false)
      expect(await block.locator('.reasoning-text').textContent()).toBe(stored.reasoning)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })
})
