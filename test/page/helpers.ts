/** Page-test helpers: drive the chat page, sample its DOM from inside the page, read the stored log over REST. */
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll } from 'vitest'
import { eventually, startApp, storedEvents, type RunningApp } from '../support/app.js'
import { launchBrowser } from '../support/browser.js'

export type Stored = Record<string, any> & { type: string; seq: number }

export const lastTurn = '#messages .turn:last-child'

export async function waitConnected (page: Page): Promise<void> {
  await page.waitForSelector('#conn[data-state="open"]')
}

/** Types like a person and presses Enter. */
export async function sendMessage (page: Page, text: string): Promise<void> {
  await page.locator('#composer-input').fill(text)
  await page.locator('#send:not([disabled])').waitFor()
  await page.locator('#composer-input').press('Enter')
}

export function sessionIdOf (page: Page): string {
  const id = new URL(page.url()).searchParams.get('s')
  if (!id) throw new Error(`no session id in ${page.url()}`)
  return id
}

/**
 * Records, from inside the page, every distinct text length of the last turn's answer as the DOM
 * changes, and whether the "thinking" indicator was visible while the answer was still empty.
 */
export async function watchAnswer (page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as any
    w.__lengths = [] as number[]
    w.__sawThinking = false
    const sample = () => {
      const turn = document.querySelector('#messages .turn:last-child')
      if (!turn) return
      const text = turn.querySelector('.answer')?.textContent ?? ''
      const thinking = turn.querySelector('.thinking') as HTMLElement | null
      if (thinking && !thinking.hidden && text === '') w.__sawThinking = true
      if (text.length > 0 && w.__lengths.at(-1) !== text.length) w.__lengths.push(text.length)
    }
    new MutationObserver(sample).observe(document.querySelector('#messages')!, {
      subtree: true, childList: true, characterData: true, attributes: true
    })
  })
}

export async function readWatch (page: Page): Promise<{ lengths: number[]; sawThinking: boolean }> {
  return page.evaluate(() => ({ lengths: (window as any).__lengths, sawThinking: (window as any).__sawThinking }))
}

export async function assistantMessages (server: RunningApp, sessionId: string): Promise<Stored[]> {
  return (await storedEvents(server, sessionId) as Stored[]).filter((e) => e.type === 'assistant_message')
}

/** Waits until the session's log holds `count` assistant messages (they are written in the background). */
export function waitStoredAnswers (server: RunningApp, sessionId: string, count: number): Promise<Stored[]> {
  return eventually(async () => {
    const answers = await assistantMessages(server, sessionId)
    return answers.length >= count ? answers : null
  })
}

/** What the page's own markdown pipeline makes of `markdown`, as text: the reference for "no text twice". */
export function renderedText (page: Page, markdown: string): Promise<string> {
  // A string, not a function: vitest rewrites `import()` inside functions, and this one must run in the page.
  return page.evaluate(`(async () => {
    const { renderMarkdown } = await import('/js/markdown.js')
    const div = document.createElement('div')
    renderMarkdown(div, ${JSON.stringify(markdown)})
    return div.textContent ?? ''
  })()`)
}

export const squash = (s: string): string => s.replace(/\s+/g, ' ').trim()

/** Occurrences of `needle` in `haystack`. */
export const count = (haystack: string, needle: string): number => haystack.split(needle).length - 1

/** Chromium and a server for one describe block: started before its tests, closed after them. */
export function pageServer (opts: Parameters<typeof startApp>[0]): { readonly browser: Browser; readonly server: RunningApp } {
  let browser: Browser | undefined
  let server: RunningApp | undefined
  beforeAll(async () => {
    browser = await launchBrowser()
    server = await startApp(opts)
  })
  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })
  return {
    get browser () { if (!browser) throw new Error('the browser is not started yet'); return browser },
    get server () { if (!server) throw new Error('the server is not started yet'); return server }
  }
}
