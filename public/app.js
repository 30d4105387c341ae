/** The chat page's entry: signs in when the server asks for it, then wires the sidebar, conversation view, composer and the session's socket. */
import { $, newId } from './js/dom.js'
import { api } from './js/api.js'
import { openChat } from './js/chat.js'
import { closeText } from './js/errors.js'
import { startAuth } from './js/auth-flow.js'
import { createComposer } from './js/composer.js'
import { createMessageView } from './js/render.js'
import { createSessionList } from './js/sessions.js'
import { createSummaryPanel } from './js/summary.js'
import { createStatusIndicator, showModel } from './js/status.js'
import { createSidebarToggle } from './js/sidebar.js'

const ID = /^[A-Za-z0-9_-]{1,64}$/

const view = createMessageView({ list: $('#messages'), scroller: $('#scroller'), jumpButton: $('#jump'), emptyState: $('#empty-state') })
// Approve / Deny on a tool card (tools.js) go to the open chat.
$('#messages').addEventListener('tool-approval', (e) => { chat?.approve(e.detail) })
const status = createStatusIndicator({ root: $('#conn'), text: $('#conn-text') })
const sidebar = createSidebarToggle({ app: $('#app'), button: $('#menu-button'), scrim: $('#scrim'), sidebar: $('#sidebar') })
const title = $('#chat-title')
let chat = null
let auth = null // the signed-in session ({ token(), refused?() }); null while signed out

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
    getToken: () => auth?.token() ?? null,
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
      notice (n) { composer.show(n) },
      fatal (code) {
        if (code === 4401 && auth?.refused) {
          auth.refused()
          return true
        }
        if (code === 4403) {
          composer.show({ text: closeText(4403), action: { label: 'Start a new chat', run: newChat } })
          return true
        }
        return false
      }
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

function newChat () {
  navigate(newId())
  composer.focus()
}

$('#new-chat').addEventListener('click', newChat)

$('#suggestions').addEventListener('click', (event) => {
  const chip = event.target instanceof Element ? event.target.closest('[data-prompt]') : null
  if (!chip) return
  const input = $('#composer-input')
  input.value = chip.dataset.prompt
  input.dispatchEvent(new Event('input'))
  $('#composer').requestSubmit()
})

window.addEventListener('popstate', () => {
  if (!auth) return // signed out: the chat opens on sign-in
  const id = idFromUrl()
  if (id) { open(id); sessions.refresh() } else navigate(newId(), { replace: true })
})

/** Shows the chat and opens the session named in the URL (or a new one). */
function start (session) {
  auth = session
  $('#app').hidden = false
  const initial = idFromUrl()
  if (initial) { open(initial); sessions.refresh() } else navigate(newId(), { replace: true })
  composer.focus()
}

/** Signed out: the socket closes and the conversation leaves the screen (the URL keeps the chat for the next sign-in). */
function stop () {
  auth = null
  chat?.close()
  chat = null
  view.clear()
  composer.reset()
  summary.stop()
  $('#session-list').replaceChildren()
  $('#app').hidden = true
}

// Before the first session frame arrives, /health already knows the model.
api.health().then((h) => { if (h?.model) showModel($('#model-badge'), h.model) }).catch(() => {})

startAuth({
  signIn: $('#signin'),
  account: $('#account'),
  on: {
    signedIn: start,
    signedOut: stop,
    refreshed (token) { chat?.reauth(token) },
    // Another principal's token: the open chat is not theirs.
    switched: newChat
  }
})
