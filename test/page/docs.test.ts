/** The OpenAPI UI at /docs renders in a real browser under its own CSP: scripts stay 'self' only, nothing is blocked. */
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startApp, type RunningApp } from '../support/app.js'
import { describeWithBrowser, launchBrowser, openPage } from '../support/browser.js'

describeWithBrowser('API docs page', () => {
  let browser: Browser
  let server: RunningApp

  beforeAll(async () => {
    browser = await launchBrowser()
    server = await startApp()
  })
  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })

  it('renders every route of the OpenAPI document with no CSP violation or error', async () => {
    const { page, problems, close } = await openPage(browser, `${server.baseUrl}/docs`)
    try {
      await page.locator('.swagger-ui .info .title').waitFor()
      expect(await page.locator('.swagger-ui .info .title').textContent()).toContain('Realtime AI Backend')
      const paths = await page.locator('.opblock-summary-path').evaluateAll((els) => els.map((el) => el.getAttribute('data-path')))
      expect(paths.sort()).toEqual(['/api/me', '/api/session/{id}', '/api/session/{id}/events', '/api/sessions', '/auth/config', '/health', '/health/live', '/health/ready', '/metrics', '/protocol.json'])
      expect(problems).toEqual([])
      // The relaxation is for styles on /docs only.
      const docsCsp = (await fetch(`${server.baseUrl}/docs`)).headers.get('content-security-policy') ?? ''
      expect(docsCsp).toMatch(/script-src 'self';/)
      expect(docsCsp).toMatch(/style-src 'self' 'unsafe-inline';/)
      const pageCsp = (await fetch(`${server.baseUrl}/`)).headers.get('content-security-policy') ?? ''
      expect(pageCsp).toContain("style-src 'self'")
      expect(pageCsp).not.toContain('unsafe-inline')
    } finally {
      await close()
    }
  })
})
