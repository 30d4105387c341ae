/** Helpers for the sign-in page tests: a page with its sockets and REST calls watched, one checked chat turn, where a token may be stored. */
import type { Browser, Page } from 'playwright-core'
import { expect } from 'vitest'
import { eventually, type RunningApp } from '../support/app.js'
import { openPage, type OpenedPage } from '../support/browser.js'
import { lastTurn, renderedText, sendMessage, sessionIdOf, squash } from './helpers.js'

export const EXPIRED = 'Your sign-in has expired or was refused — sign in again.'
export const PROMPT = 'What can you do?'

export interface PageSocket { url: string; close: number | null }

/**
 * Before the first navigation: wraps window.WebSocket so the page's own sockets (URL, close code) can be read
 * with socketsOf(), and records every frame the page sends on a session socket.
 */
export async function watchSockets (page: Page): Promise<{ sent: string[] }> {
  const sent: string[] = []
  page.on('websocket', (ws) => ws.on('framesent', (f) => { if (typeof f.payload === 'string') sent.push(f.payload) }))
  // A string, not a function: what vitest compiles a function into need not run in the page.
  await page.addInitScript(`(() => {
    const Native = window.WebSocket
    window.__sockets = []
    window.WebSocket = class extends Native {
      constructor (url, protocols) {
        super(url, protocols)
        const rec = { url: String(url), close: null }
        window.__sockets.push(rec)
        this.addEventListener('close', (event) => { rec.close = event.code })
      }
    }
  })()`)
  return { sent }
}

export function socketsOf (page: Page): Promise<PageSocket[]> {
  return page.evaluate(() => (window as any).__sockets as PageSocket[])
}

/** The `auth` frames the page sent, in order. */
export function authFrames (sent: string[]): Array<{ type: string; token: string }> {
  return sent.map((s) => JSON.parse(s)).filter((f) => f.type === 'auth')
}

/** Everything the page could have persisted: its URL, localStorage, sessionStorage and cookies. */
export async function storageOf (page: Page): Promise<{ href: string; local: string; session: string; sessionKeys: string[]; cookie: string }> {
  return page.evaluate(() => ({
    href: location.href,
    local: JSON.stringify(Object.entries(localStorage)),
    session: JSON.stringify(Object.entries(sessionStorage)),
    sessionKeys: Object.keys(sessionStorage),
    cookie: document.cookie
  }))
}

/** Every stored event of a session, read over REST with `token` (auth is on in these servers). */
export async function storedAs (server: RunningApp, token: string, sessionId: string): Promise<Array<Record<string, any>>> {
  const res = await server.app.inject({
    url: `/api/session/${sessionId}/events?after=0&limit=500`,
    headers: { authorization: `Bearer ${token}` }
  })
  if (res.statusCode !== 200) throw new Error(`events of ${sessionId}: HTTP ${res.statusCode} ${res.body}`)
  return res.json().events
}

export interface AuthPage extends OpenedPage {
  /** Frames the page sent on its sockets. */
  sent: string[]
  /** `<path> <Authorization header>` of every /api/* request, in order. */
  api: string[]
}

/** Opens the page with its sockets and REST calls watched; `clock` installs Playwright's clock (time still flows). */
export async function openWatched (browser: Browser, url: string, { clock = false } = {}): Promise<AuthPage> {
  let sent: string[] = []
  const api: string[] = []
  const opened = await openPage(browser, url, {
    beforeGoto: async (page) => {
      if (clock) await page.clock.install()
      sent = (await watchSockets(page)).sent
      page.on('request', (req) => {
        const { pathname } = new URL(req.url())
        if (pathname.startsWith('/api/')) api.push(`${pathname} ${req.headers().authorization ?? '(none)'}`)
      })
    }
  })
  return { ...opened, sent, api }
}

/** Sends PROMPT, waits for the whole answer, and checks it against the stored one; returns the text shown. */
export async function chatOnce (page: Page, server: RunningApp, token: () => string): Promise<string> {
  const before = await page.locator('.turn').count()
  await sendMessage(page, PROMPT)
  await page.locator(`#messages > .turn:nth-child(${before + 1})[data-state="done"]`).waitFor({ timeout: 20_000 })
  const shown = await page.locator(`${lastTurn} .answer`).textContent() ?? ''
  const answers = await eventually(async () => {
    const found = (await storedAs(server, token(), sessionIdOf(page))).filter((e) => e.type === 'assistant_message')
    return found.length > before ? found : null
  })
  expect(answers).toHaveLength(before + 1)
  expect(answers.at(-1)!.finishReason).toBe('stop')
  expect(shown.length).toBeGreaterThan(20)
  expect(squash(shown)).toBe(squash(await renderedText(page, answers.at(-1)!.content)))
  return shown
}

/** The console line Chromium prints for a refused fetch (401 from us, 400 from Auth) is expected where a credential is refused on purpose. */
export const besidesRefusals = (problems: string[]) => problems.filter((p) => !/status of 40[01] /.test(p))
