/** Approve and Deny from the tool card in real Chromium (DESIGN §13), against the offline model. */
import { expect, it } from 'vitest'
import { describeWithBrowser, openPage } from '../support/browser.js'
import { lastTurn, pageServer, sendMessage, sessionIdOf, waitConnected, waitStoredAnswers, type Stored } from './helpers.js'
import { storedEvents } from '../support/app.js'

describeWithBrowser('tool approval on the page', () => {
  const ctx = pageServer({ env: { TOOLS_REQUIRE_APPROVAL: 'get_system_metrics', OFFLINE_TOKEN_DELAY_MS: '5' } })

  it('Approve runs the tool; Deny declines it and the answer says so; a second tab sees each decision', async () => {
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      const sessionId = sessionIdOf(page)
      await sendMessage(page, 'What is the CPU load?')
      const card = page.locator(`${lastTurn} details.tool`)
      await page.locator(`${lastTurn} details.tool[data-approval="waiting"]`).waitFor()
      // Open, with the three choices, and the tool not run yet.
      expect(await card.evaluate((el) => (el as HTMLDetailsElement).open)).toBe(true)
      expect(await card.locator('.tool-status').textContent()).toBe('waiting for approval')
      expect(await card.locator('.tool-approval button').allTextContents()).toEqual(['Approve', 'Always allow', 'Deny'])
      expect(await page.locator(`${lastTurn}`).getAttribute('data-state')).toBe('running')

      // A second tab of the same session shows the same waiting card.
      const second = await openPage(ctx.browser, `${ctx.server.baseUrl}/?s=${sessionId}`)
      await second.page.locator(`${lastTurn} details.tool[data-approval="waiting"]`).waitFor()

      await card.locator('button.approve').click()
      await page.locator(`${lastTurn} details.tool[data-approval="approved"]`).waitFor()
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor({ timeout: 20_000 })
      expect(await card.getAttribute('data-status')).toBe('ok')
      expect(await card.locator('.tool-approval').textContent()).toBe('Approved')
      expect(await card.locator('.tool-approval button').count()).toBe(0)
      expect(await page.locator(`${lastTurn} .answer`).textContent()).toMatch(/^CPU load is/)
      await second.page.locator(`${lastTurn} details.tool[data-approval="approved"]`).waitFor()

      await sendMessage(page, 'And the memory use of the server?')
      await page.locator(`${lastTurn} details.tool[data-approval="waiting"]`).waitFor()
      await page.locator(`${lastTurn} details.tool button.deny`).click()
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor({ timeout: 20_000 })
      const denied = page.locator(`${lastTurn} details.tool`)
      expect(await denied.getAttribute('data-approval')).toBe('denied')
      expect(await denied.getAttribute('data-status')).toBe('failed')
      expect(await denied.locator('.tool-approval').textContent()).toBe('Denied')
      expect(await denied.locator('.tool-output').textContent()).toContain('The user declined this tool call')
      expect(await page.locator(`${lastTurn} .answer`).textContent()).toContain('The get_system_metrics tool failed: The user declined')
      await second.page.locator(`${lastTurn} details.tool[data-approval="denied"]`).waitFor()

      await waitStoredAnswers(ctx.server, sessionId, 2)
      const approvals = (await storedEvents(ctx.server, sessionId) as Stored[]).filter((e) => e.type === 'approval')
      expect(approvals.map((a) => a.approved)).toEqual([true, false])
      expect(problems).toEqual([])
      expect(second.problems).toEqual([])
      await second.close()
    } finally {
      await close()
    }
  })
})

describeWithBrowser('tool approval timing out on the page', () => {
  const ctx = pageServer({ env: { TOOLS_REQUIRE_APPROVAL: '*', TOOL_APPROVAL_TIMEOUT_MS: '400', OFFLINE_TOKEN_DELAY_MS: '5' } })

  it('shows a request nobody answered as timed out', async () => {
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      await sendMessage(page, 'What is the CPU load?')
      await page.locator(`${lastTurn} details.tool[data-approval="waiting"]`).waitFor()
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor({ timeout: 20_000 })
      const card = page.locator(`${lastTurn} details.tool`)
      expect(await card.getAttribute('data-approval')).toBe('timeout')
      expect(await card.locator('.tool-approval').textContent()).toBe('Timed out: declined')
      expect(await card.getAttribute('data-status')).toBe('failed')
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })

  it('Stop while a card waits for approval: the buttons go, the card says it was not run, the tool never ran', async () => {
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      const sessionId = sessionIdOf(page)
      await sendMessage(page, 'What is the CPU load?')
      const card = page.locator(`${lastTurn} details.tool`)
      await page.locator(`${lastTurn} details.tool[data-approval="waiting"]`).waitFor()
      await page.getByRole('button', { name: 'Stop' }).click()
      await page.locator(`${lastTurn} details.tool[data-approval="unanswered"]`).waitFor()
      expect(await card.locator('.tool-approval button').count()).toBe(0)
      expect(await card.locator('.tool-approval').textContent()).toBe('Not run: the turn ended before an answer')
      await waitStoredAnswers(ctx.server, sessionId, 1)
      const events = await storedEvents(ctx.server, sessionId) as Stored[]
      // No decision was stored; the call's one result says it did not run.
      expect(events.filter((e) => e.type === 'approval')).toEqual([])
      const results = events.filter((e) => e.type === 'tool_result')
      expect(results).toHaveLength(1)
      expect(results[0]).toMatchObject({ ok: false })
      expect(events.find((e) => e.type === 'assistant_message')).toMatchObject({ finishReason: 'cancelled' })
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })
})
