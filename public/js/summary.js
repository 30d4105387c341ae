/** The current session's summary panel (GET /api/session/:id), polled while the summary is being written. */
import { api } from './api.js'
import { h, formatDuration, relativeTime } from './dom.js'
import { renderMarkdown } from './markdown.js'

const POLL_MS = 1500
const POLL_LIMIT = 120 // about three minutes, then the next turn or reload looks again

/** createSummaryPanel({ panel, body, meta, onRecord }) → { show(id, { load }), refresh(), stop() } */
export function createSummaryPanel ({ panel, body, meta, onRecord }) {
  let sessionId = null
  let timer = null
  let polls = 0

  function paint (record) {
    if (!record || (record.summaryStatus === 'none' && !record.summary)) {
      panel.hidden = true
      return
    }
    panel.hidden = false
    panel.dataset.status = record.summaryStatus
    // The session may be live again (reopened); the summary describes it as of its last end.
    const parts = []
    if (record.endedAt) parts.push(`as of ${relativeTime(record.endedAt)}`)
    if (record.durationMs !== null && record.durationMs !== undefined) parts.push(`session lasted ${formatDuration(record.durationMs)}`)
    meta.textContent = parts.join(' · ')
    if (record.summary && record.summaryStatus !== 'failed') {
      renderMarkdown(body, record.summary)
      if (record.summaryStatus === 'pending') body.append(h('p', { className: 'muted', text: 'A newer summary is being written…' }))
    } else if (record.summaryStatus === 'pending') {
      body.replaceChildren(h('p', { className: 'muted summary-pending', text: 'The summary is being written…' }))
    } else if (record.summaryStatus === 'failed') {
      body.replaceChildren(h('p', { className: 'turn-error', text: 'The summary could not be written.' }))
    }
  }

  async function refresh () {
    const id = sessionId
    clearTimeout(timer)
    let record = null
    try { record = await api.session(id) } catch { record = null }
    if (id !== sessionId) return
    paint(record)
    onRecord(record)
    if (record?.summaryStatus === 'pending' && polls++ < POLL_LIMIT) timer = setTimeout(refresh, POLL_MS)
  }

  return {
    /** Switches to a session; `load` false for one known to be new (nothing to fetch yet). */
    show (id, { load = true } = {}) {
      sessionId = id
      polls = 0
      clearTimeout(timer)
      panel.hidden = true
      body.replaceChildren()
      return load ? refresh() : Promise.resolve()
    },
    refresh () { polls = 0; return refresh() },
    stop () { clearTimeout(timer) }
  }
}
