/** The chat page's entry: wires the sidebar, conversation view, composer and the socket of the open session. */
import { $, newId } from './js/dom.js'
import { api } from './js/api.js'
import { openChat } from './js/chat.js'
import { createComposer } from './js/composer.js'
import { createMessageView } from './js/render.js'
import { createSessionList } from './js/sessions.js'
import { createSummaryPanel } from './js/summary.js'
import { createStatusIndicator, showModel } from './js/status.js'
import { createSidebarToggle } from './js/sidebar.js'

const ID = /^[A-Za-z0-9_-]{1,64}$/

const view = createMessageView({ list: $('#messages'), scroller: $('#scroller'), jumpButton: $('#jump'), emptyState: $('#empty-state') })
const status = createStatusIndicator({ root: $('#conn'), text: $('#conn-text') })
const sidebar = createSidebarToggle({ app: $('#app'), button: $('#menu-button'), scrim: $('#scrim'), sidebar: $('#sidebar') })
const title = $('#chat-title')
let chat = null

const composer = createComposer({
  form: $('#composer'),
  input: $('#composer-input'),
  sendButton: $('#send'),
  stopButton: $('#stop'),
  notice: $('#notice'),
  counter: $('#counter'),
  onSend: (text) => Boolean(chat?.send(text)),
  onStop: () => chat?.stop()
})

const sessions = createSessionList({ list: $('#session-list'), more: $('#more-sessions'), empty: $('#sessions-empty'), onOpen: (id) => navigate(id) })

const summary = createSummaryPanel({
  panel: $('#summary'),
  body: $('#summary-body'),
  meta: $('#summary-meta'),
  onRecord (record) {
    title.textContent = record?.title || 'New chat'
    document.title = record?.title ? `${record.title} · Realtime AI Chat` : 'Realtime AI Chat'
  }
})

function open (sessionId) {
  chat?.close()
  view.clear()
  composer.reset()
  composer.setReady(false)
  title.textContent = 'New chat'
  sessions.setCurrent(sessionId)
  summary.show(sessionId, { load: false })
  let first = true
  // lastSeq starts at 0: the first connect replays the whole session (reload-safe).
  chat = openChat({
    sessionId,
    view,
    on: {
      session (frame) {
        composer.setLimits(frame.limits)
        composer.setReady(true)
        composer.clearInfo()
        showModel($('#model-badge'), frame.model, frame.tools)
        // A session with history has a record (title, summary); a brand-new one has nothing to fetch yet.
        if (first && frame.resumed) summary.refresh()
        first = false
      },
      status (s) {
        status.set(s)
        if (s.state !== 'open') composer.setReady(false)
      },
      running (turnId) { composer.setRunning(Boolean(turnId)) },
      userMessage (event) {
        // A new chat takes its first question as title right away (the store does the same).
        if (title.textContent === 'New chat') title.textContent = event.content.slice(0, 120)
      },
      turnDone () {
        sessions.refresh()
        summary.refresh()
      },
      notice (n) { composer.show(n) }
    }
  })
  sidebar.close()
}

function navigate (sessionId, { replace = false } = {}) {
  const url = `/?s=${encodeURIComponent(sessionId)}`
  history[replace ? 'replaceState' : 'pushState']({ sessionId }, '', url)
  open(sessionId)
  sessions.refresh()
}

function idFromUrl () {
  const id = new URLSearchParams(location.search).get('s') ?? location.hash.slice(1)
  return id && ID.test(id) ? id : null
}

$('#new-chat').addEventListener('click', () => {
  navigate(newId())
  composer.focus()
})

$('#suggestions').addEventListener('click', (event) => {
  const chip = event.target instanceof Element ? event.target.closest('[data-prompt]') : null
  if (!chip) return
  const input = $('#composer-input')
  input.value = chip.dataset.prompt
  input.dispatchEvent(new Event('input'))
  $('#composer').requestSubmit()
})

window.addEventListener('popstate', () => {
  const id = idFromUrl()
  if (id) { open(id); sessions.refresh() } else navigate(newId(), { replace: true })
})

// Before the first session frame arrives, /health already knows the model.
api.health().then((h) => { if (h?.model) showModel($('#model-badge'), h.model) }).catch(() => {})

const initial = idFromUrl()
if (initial) { open(initial); sessions.refresh() } else navigate(newId(), { replace: true })
composer.focus()
