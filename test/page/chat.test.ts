/** The chat page in real Chromium against a real server: streaming, tool cards, keyboard, Stop, inline errors. */
import { expect, it } from 'vitest'
import { createMemoryStore } from '../../src/store/memory.js'
import { storedEvents } from '../support/app.js'
import { describeWithBrowser, openPage } from '../support/browser.js'
import {
  assistantMessages, count, lastTurn, pageServer, readWatch, renderedText, sendMessage, sessionIdOf, squash, waitConnected, waitStoredAnswers, watchAnswer
} from './helpers.js'

describeWithBrowser('chat page', () => {
  const ctx = pageServer({ env: { OFFLINE_TOKEN_DELAY_MS: '40' } })

  it('streams the answer visibly, shows the thinking state and a tool card with its result', async () => {
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      const sessionId = sessionIdOf(page)
      expect(await page.locator('#model-badge').textContent()).toContain('Offline model')
      await watchAnswer(page)

      await sendMessage(page, 'What is the CPU load?')
      // While the turn runs, Send is disabled and Stop is offered.
      await page.locator(`${lastTurn}[data-state="running"]`).waitFor()
      expect(await page.locator('#send').isDisabled()).toBe(true)
      expect(await page.locator('#stop').isVisible()).toBe(true)

      await page.locator(`${lastTurn}[data-state="done"]`).waitFor({ timeout: 20_000 })
      const { lengths, sawThinking } = await readWatch(page)
      expect(sawThinking).toBe(true)
      // Seen growing across several frames, never shrinking, and ending at the full text.
      expect(new Set(lengths).size).toBeGreaterThanOrEqual(3)
      for (let i = 1; i < lengths.length; i++) expect(lengths[i]).toBeGreaterThan(lengths[i - 1])
      const answerText = await page.locator(`${lastTurn} .answer`).textContent() ?? ''
      expect(lengths.at(-1)).toBe(answerText.length)
      expect(answerText).toMatch(/^CPU load is [\d.]+ % across \d+ cores?/)

      // The tool card: name, status, duration, arguments and the real result, collapsible.
      const card = page.locator(`${lastTurn} details.tool`)
      expect(await card.count()).toBe(1)
      expect(await card.getAttribute('data-status')).toBe('ok')
      expect(await card.locator('.tool-name').textContent()).toBe('get_system_metrics')
      expect(await card.locator('.tool-duration').textContent()).toMatch(/^\d+(\.\d)? m?s$/)
      expect(await card.locator('.tool-output').isVisible()).toBe(false)
      await card.locator('summary').click()
      expect(await card.locator('.tool-output').isVisible()).toBe(true)
      const events = await storedEvents(ctx.server, sessionId)
      const result = events.find((e) => e.type === 'tool_result')!
      expect(JSON.parse(await card.locator('.tool-output code').textContent() ?? '')).toEqual(result.result)
      expect(answerText).toContain(`CPU load is ${(result.result as any).cpu.loadPercent.toFixed(1)} %`)

      const [stored] = await waitStoredAnswers(ctx.server, sessionId, 1)
      expect(squash(answerText)).toBe(squash(await renderedText(page, stored.content)))
      expect(await page.locator('#send').isDisabled()).toBe(true) // empty box
      expect(await page.locator('#stop').isVisible()).toBe(false)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })

  it('Shift+Enter adds a line, Enter sends, and the user text is shown as typed', async () => {
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      const box = page.locator('#composer-input')
      await box.click()
      await page.keyboard.type('first line')
      await page.keyboard.press('Shift+Enter')
      await page.keyboard.type('second <b>line</b>')
      expect(await box.inputValue()).toBe('first line\nsecond <b>line</b>')
      expect(await page.locator('.turn').count()).toBe(0)
      await page.keyboard.press('Enter')
      // Stored and acknowledged: the turn has its id (the answer itself is not needed here).
      await page.locator(`${lastTurn}[data-turn-id]`).waitFor()
      expect(await box.inputValue()).toBe('')
      const bubble = page.locator(`${lastTurn} .user-bubble`)
      expect(await bubble.textContent()).toBe('first line\nsecond <b>line</b>')
      expect(await bubble.locator('b').count()).toBe(0)
      const stored = await storedEvents(ctx.server, sessionIdOf(page))
      expect(stored.filter((e) => e.type === 'user_message').map((e) => e.content)).toEqual(['first line\nsecond <b>line</b>'])
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })

  it('Stop ends the answer mid-stream and the turn shows as stopped', async () => {
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      const sessionId = sessionIdOf(page)
      await sendMessage(page, 'Tell me something long')
      const answer = page.locator(`${lastTurn} .answer`)
      await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent ?? '').length > 40, `${lastTurn} .answer`)
      await page.locator('#stop').click()
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor()

      expect(await page.locator(lastTurn).getAttribute('data-finish')).toBe('cancelled')
      expect(await page.locator(`${lastTurn} .outcome`).textContent()).toBe('Stopped')
      const [stored] = await waitStoredAnswers(ctx.server, sessionId, 1)
      expect(stored.finishReason).toBe('cancelled')
      // Streaming really stopped: the shown text is the stored partial answer, well short of the full reply.
      const shown = await answer.textContent() ?? ''
      expect(squash(shown)).toBe(squash(await renderedText(page, stored.content)))
      expect(shown).toMatch(/^I am the built-in offline model/)
      expect(shown).not.toContain('restart the server.')
      // The composer is usable again.
      expect(await page.locator('#stop').isVisible()).toBe(false)
      await page.locator('#composer-input').fill('next')
      expect(await page.locator('#send').isDisabled()).toBe(false)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })

  it('follows the answer at the bottom, stops following when the reader scrolls up, and offers a jump back', async () => {
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl, { viewport: { width: 390, height: 300 } })
    try {
      await waitConnected(page)
      const distance = () => page.locator('#scroller').evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight)
      await sendMessage(page, 'Tell me something long, please')
      await page.waitForFunction(() => {
        const el = document.querySelector('#scroller')!
        return el.scrollHeight > el.clientHeight + 40
      })
      expect(await distance()).toBeLessThanOrEqual(48) // following while it streams
      await page.locator('#scroller').evaluate((el) => { el.scrollTop = 0 })
      await page.locator('#jump').waitFor()
      const grownFrom = await page.locator(`${lastTurn} .answer`).evaluate((el) => el.textContent!.length)
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor({ timeout: 20_000 })
      expect(await page.locator(`${lastTurn} .answer`).evaluate((el) => el.textContent!.length)).toBeGreaterThan(grownFrom)
      expect(await page.locator('#scroller').evaluate((el) => el.scrollTop)).toBe(0) // left where the reader put it
      await page.locator('#jump').click()
      expect(await distance()).toBeLessThanOrEqual(1)
      expect(await page.locator('#jump').isVisible()).toBe(false)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })
})

describeWithBrowser('chat page errors', () => {
  const ctx = pageServer({ env: { OFFLINE_TOKEN_DELAY_MS: '0', RATE_MESSAGES_PER_MIN: '1' } })

  it('shows rate limiting inline with the wait, gives the text back and keeps Send off until then', async () => {
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      await sendMessage(page, 'hello')
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor()
      await sendMessage(page, 'and again')
      const notice = page.locator('#notice')
      await notice.waitFor()
      expect(await notice.getAttribute('role')).toBe('alert')
      expect(await notice.textContent()).toMatch(/too quickly\. You can send again in \d+ s\./)
      expect(await page.locator('#composer-input').inputValue()).toBe('and again')
      expect(await page.locator('#send').isDisabled()).toBe(true)
      // The refused message left no bubble behind, and nothing was stored for it.
      expect(await page.locator('.turn').count()).toBe(1)
      expect(count(await page.locator('#messages').textContent() ?? '', 'and again')).toBe(0)
      expect((await assistantMessages(ctx.server, sessionIdOf(page))).length).toBe(1)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })
})

describeWithBrowser('chat page: a message the store refuses for good', () => {
  const store = createMemoryStore()
  const append = store.appendEvents.bind(store)
  // What a check constraint does on Postgres: this one message is refused, for good.
  store.appendEvents = async (batch) => {
    if (batch.some(({ event }) => event.type === 'user_message' && event.content === 'refuse me')) throw new Error('check_violation')
    await append(batch)
  }
  const ctx = pageServer({ env: { OFFLINE_TOKEN_DELAY_MS: '0' }, deps: { store } })

  it('says it was not saved and gives the text back (not "will be saved"), and the chat stays usable', async () => {
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      await sendMessage(page, 'refuse me')
      const notice = page.locator('#notice')
      await notice.waitFor()
      expect(await notice.textContent()).toContain('Storage refused your message, so it was not saved or answered.')
      expect(await page.locator('#composer-input').inputValue()).toBe('refuse me')
      expect(count(await page.locator('#messages').textContent() ?? '', 'refuse me')).toBe(0)
      await sendMessage(page, 'hello')
      const answers = await waitStoredAnswers(ctx.server, sessionIdOf(page), 2)
      expect(answers.map((a) => a.finishReason)).toEqual(['error', 'stop'])
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor()
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })
})

describeWithBrowser('chat page errors (model down, size limits)', () => {
  const ctx = pageServer({ env: { OFFLINE_FAULT: 'fail', MAX_MESSAGE_BYTES: '1024' } })

  it('says plainly when the model is unavailable, and the chat stays usable', async () => {
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      await sendMessage(page, 'hello?')
      await page.locator(`${lastTurn}[data-state="done"]`).waitFor()
      expect(await page.locator(lastTurn).getAttribute('data-finish')).toBe('error')
      expect(await page.locator(`${lastTurn} .turn-error`).textContent()).toBe('The model is unavailable right now, so there is no answer. Try again in a moment.')
      expect(await page.locator(`${lastTurn} .outcome`).textContent()).toBe('The answer failed')
      await page.locator('#composer-input').fill('again')
      expect(await page.locator('#send').isDisabled()).toBe(false)
      expect(problems).toEqual([])
    } finally {
      await close()
    }
  })

  it('refuses a too-large message before sending it, and explains a close 1009 from the server', async () => {
    let widened = 0
    const { page, problems, close } = await openPage(ctx.browser, ctx.server.baseUrl)
    try {
      await waitConnected(page)
      const big = 'x'.repeat(1100)
      await sendMessage(page, big)
      expect(await page.locator('#notice').textContent()).toContain('too large to send (limit 1 KiB)')
      expect(await page.locator('#composer-input').inputValue()).toBe(big)
      expect(await page.locator('.turn').count()).toBe(0)
    } finally {
      await close()
    }
    // A page that believes the limit is higher (say, an older config) meets the server's own check.
    const second = await openPage(ctx.browser, ctx.server.baseUrl, {
      beforeGoto: (p) => p.routeWebSocket(/\/ws\/session\//, (ws) => {
        const upstream = ws.connectToServer()
        upstream.onMessage((msg) => {
          const frame = JSON.parse(String(msg))
          if (frame.type === 'session') { frame.limits.maxMessageBytes = 1_000_000; widened++ }
          ws.send(JSON.stringify(frame))
        })
      })
    })
    try {
      await waitConnected(second.page)
      const big = 'y'.repeat(1100)
      await sendMessage(second.page, big)
      await second.page.locator('#notice').waitFor()
      expect(await second.page.locator('#notice').textContent()).toContain('too large for the server')
      expect(await second.page.locator('#composer-input').inputValue()).toBe(big)
      expect(await second.page.locator('.turn').count()).toBe(0)
      // …and it reconnects by itself.
      await waitConnected(second.page)
      expect(widened).toBe(2)
      expect([...problems, ...second.problems.filter((p) => !p.includes('WebSocket'))]).toEqual([])
    } finally {
      await second.close()
    }
  })
})
