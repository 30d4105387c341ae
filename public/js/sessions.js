/** The sidebar: recent sessions with status, time and title/summary; a click opens one. */
import { api } from './api.js'
import { h, relativeTime } from './dom.js'

const PAGE = 30

/**
 * createSessionList({ list, more, empty, onOpen }) → { refresh(), setCurrent(id) }
 * onOpen(id) is called for a plain click; modified clicks open the link normally (new tab).
 */
export function createSessionList ({ list, more, empty, onOpen }) {
  let current = null
  let cursor = null
  let loading = false

  function item (s) {
    const label = s.title || (s.id === current ? 'New chat' : 'Untitled chat')
    // The open session is live through this page's socket even if the list was read a moment before.
    const status = s.status === 'active' || s.id === current ? 'active' : 'ended'
    const meta = h('span', { className: 'session-meta' },
      h('span', { className: `status-dot status-${status}`, 'aria-hidden': 'true' }),
      h('span', { className: 'session-status', text: status === 'active' ? 'Active' : 'Ended' }),
      h('span', { 'aria-hidden': 'true', text: '·' }),
      h('time', { datetime: s.startedAt, text: relativeTime(s.startedAt) }))
    const summary = s.summaryStatus === 'ready' && s.summary
      ? h('span', { className: 'session-summary', text: s.summary })
      : s.summaryStatus === 'pending' ? h('span', { className: 'session-summary muted', text: 'Summary in progress…' }) : null
    const link = h('a', { className: 'session-link', href: `/?s=${encodeURIComponent(s.id)}`, dataset: { sessionId: s.id } },
      h('span', { className: 'session-title', text: label }), meta, summary)
    if (s.id === current) link.setAttribute('aria-current', 'page')
    return h('li', { className: 'session-item' }, link)
  }

  /** Empty sessions (a page opened and left) only clutter the list; the open one always shows. */
  const worthShowing = (s) => s.messageCount > 0 || s.id === current

  async function load ({ append }) {
    if (loading) return
    loading = true
    try {
      const { sessions, nextBefore } = await api.sessions({ limit: PAGE, before: append ? cursor : undefined })
      cursor = nextBefore
      const items = sessions.filter(worthShowing).map(item)
      if (append) list.append(...items)
      else list.replaceChildren(...items)
      more.hidden = nextBefore === null
      empty.hidden = list.children.length > 0
    } catch {
      empty.hidden = false
      empty.textContent = 'Could not load the chat list.'
    } finally {
      loading = false
    }
  }

  list.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? event.target.closest('a.session-link') : null
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
    event.preventDefault()
    onOpen(link.dataset.sessionId)
  })
  more.addEventListener('click', () => load({ append: true }))

  return {
    refresh: () => load({ append: false }),
    setCurrent (id) {
      current = id
      for (const link of list.querySelectorAll('a.session-link')) {
        if (link.dataset.sessionId === id) link.setAttribute('aria-current', 'page')
        else link.removeAttribute('aria-current')
      }
    }
  }
}
