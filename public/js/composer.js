/** The message box: Enter sends, Shift+Enter adds a line; Send/Stop; inline notices with a retry countdown. */
import { formatBytes } from './errors.js'

/**
 * createComposer({ form, input, sendButton, stopButton, notice, counter, onSend, onStop })
 * onSend(text) → true when the message was taken; onStop() → void.
 */
export function createComposer ({ form, input, sendButton, stopButton, notice, counter, onSend, onStop }) {
  let running = false
  let ready = false
  let stopping = false
  let blockedUntil = 0
  let countdown = null
  let limits = null

  const tooLong = () => limits && input.value.length > limits.maxMessageChars
  const sendable = () => ready && !running && Date.now() >= blockedUntil && input.value.trim() !== '' && !tooLong()

  function sync () {
    sendButton.disabled = !sendable()
    stopButton.hidden = !running
    stopButton.disabled = stopping
    stopButton.textContent = stopping ? 'Stopping…' : 'Stop'
    form.dataset.running = String(running)
    if (limits) {
      const n = input.value.length
      const near = n > limits.maxMessageChars * 0.8
      counter.hidden = !near
      counter.textContent = `${n.toLocaleString()} / ${limits.maxMessageChars.toLocaleString()}`
      counter.classList.toggle('over', n > limits.maxMessageChars)
    }
  }

  function grow () {
    input.style.height = 'auto' // CSSOM writes are allowed by the CSP (no inline style attributes in HTML)
    input.style.height = `${Math.min(input.scrollHeight, 240)}px`
  }

  function submit () {
    if (!sendable()) return
    const text = input.value
    const frameBytes = new TextEncoder().encode(JSON.stringify({ type: 'user_message', content: text, clientId: 'x'.repeat(36) })).length
    if (limits && frameBytes > limits.maxMessageBytes) {
      show({ text: `That message is too large to send (limit ${formatBytes(limits.maxMessageBytes)}). Shorten it and try again.`, level: 'error' })
      return
    }
    if (!onSend(text)) return
    input.value = ''
    grow()
    clearNotice()
    sync()
  }

  function clearNotice () {
    clearInterval(countdown)
    notice.hidden = true
    notice.replaceChildren()
  }

  /** show({ text, level: 'error'|'info', retryAfterMs?, restore?, action?: { label, run } }) */
  function show ({ text, level = 'error', retryAfterMs, restore, action }) {
    clearInterval(countdown)
    notice.hidden = false
    notice.dataset.level = level
    const line = document.createElement('span')
    line.className = 'notice-text'
    line.textContent = text
    const close = document.createElement('button')
    close.type = 'button'
    close.className = 'notice-close'
    close.setAttribute('aria-label', 'Dismiss')
    close.textContent = '×'
    close.addEventListener('click', clearNotice)
    const parts = [line, close]
    if (action) {
      const button = document.createElement('button')
      button.type = 'button'
      button.className = 'notice-action'
      button.textContent = action.label
      button.addEventListener('click', () => { clearNotice(); action.run() })
      parts.splice(1, 0, button)
    }
    notice.replaceChildren(...parts)
    if (restore && input.value.trim() === '') { input.value = restore; grow() }
    if (retryAfterMs) {
      blockedUntil = Date.now() + retryAfterMs
      // The wait counts down in place; Send comes back when it is over.
      countdown = setInterval(() => {
        const left = Math.ceil((blockedUntil - Date.now()) / 1000)
        if (left <= 0) { clearInterval(countdown); line.textContent = 'You can send again now.'; sync(); return }
        line.textContent = text.replace(/in \d+ s\./, `in ${left} s.`)
      }, 250)
    }
    sync()
  }

  input.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return
    event.preventDefault()
    submit()
  })
  input.addEventListener('input', () => { grow(); sync() })
  form.addEventListener('submit', (event) => { event.preventDefault(); submit() })
  stopButton.addEventListener('click', () => {
    if (!running || stopping) return
    stopping = true
    sync()
    onStop()
  })

  sync()
  return {
    show,
    clearNotice,
    /** Drops a passing notice (connection trouble) once things are back to normal; errors stay. */
    clearInfo () { if (notice.dataset.level === 'info') clearNotice() },
    focus: () => input.focus(),
    setReady (value) { ready = value; sync() },
    setLimits (value) { limits = value; sync() },
    setRunning (value) {
      running = value
      if (!value) stopping = false
      sync()
    },
    reset () {
      input.value = ''
      grow()
      clearNotice()
      blockedUntil = 0
      running = false
      stopping = false
      sync()
    }
  }
}
