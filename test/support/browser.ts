/** Debian's Chromium through playwright-core for the page tests: skipped locally when missing, a failure under CI. */
import { existsSync } from 'node:fs'
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core'
import { describe, it } from 'vitest'

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

const missing = !existsSync(CHROMIUM_PATH)
const underCI = process.env.CI === 'true'

/**
 * describe() for browser tests. With Chromium present it is a plain describe. Without it the
 * suite is skipped with the reason locally; under CI=true (where nothing may skip) it becomes
 * one failing test that says what is missing.
 */
export function describeWithBrowser (name: string, fn: () => void): void {
  if (!missing) {
    describe(name, fn)
  } else if (underCI) {
    describe(name, () => {
      it('needs Chromium', () => {
        throw new Error(`Chromium not found at ${CHROMIUM_PATH} (apt-get install -y chromium, or set CHROMIUM_PATH); under CI no browser test may skip`)
      })
    })
  } else {
    describe.skip(`${name} — skipped: Chromium not found at ${CHROMIUM_PATH} (apt-get install -y chromium)`, fn)
  }
}

export function launchBrowser (): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS })
}

export interface OpenedPage {
  page: Page
  /** Uncaught page errors and console errors (CSP violations show up here). */
  problems: string[]
  /** Every URL the page requested, in order. */
  requests: string[]
  close: () => Promise<void>
}

/**
 * A fresh context (own storage, own viewport) with a page that records errors and requests.
 * `beforeGoto` runs before the first navigation (routes, init scripts).
 */
export async function openPage (browser: Browser, url: string, { beforeGoto, ...options }: BrowserContextOptions & { beforeGoto?: (page: Page) => Promise<void> } = {}): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options })
  const page = await context.newPage()
  await beforeGoto?.(page)
  const problems: string[] = []
  const requests: string[] = []
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`))
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`) })
  page.on('request', (req) => requests.push(req.url()))
  await page.goto(url)
  return { page, problems, requests, close: () => context.close() }
}
