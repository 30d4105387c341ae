/** Tool-call cards: a collapsible <details> per call with name, arguments, status, result and duration. */
import { h } from './dom.js'

const pretty = (value) => {
  if (value === undefined) return ''
  if (typeof value === 'string') return value
  try { return JSON.stringify(value, null, 2) } catch { return String(value) }
}

const formatMs = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`)

/** Creates the card for a `tool_call` event. */
export function createToolCard (call) {
  const status = h('span', { className: 'tool-status', text: 'running' })
  const duration = h('span', { className: 'tool-duration' })
  const args = h('pre', { className: 'tool-pre' }, h('code', { text: pretty(call.arguments) || '{}' }))
  // An MCP tool is named <server>__<tool>: the card says which server runs it.
  const split = call.name.indexOf('__')
  const server = split > 0 ? call.name.slice(0, split) : undefined
  const card = h('details', { className: 'tool', dataset: { callId: call.callId, status: 'running', ...(server ? { server } : {}) } },
    h('summary', { className: 'tool-summary' },
      h('span', { className: 'tool-icon', 'aria-hidden': 'true', text: 'fn' }),
      h('span', { className: 'tool-label', text: server ? `MCP · ${server}` : 'Tool' }),
      h('code', { className: 'tool-name', text: call.name }),
      status,
      duration
    ),
    h('div', { className: 'tool-body' },
      h('div', { className: 'tool-section' }, h('h4', { text: 'Arguments' }), args),
      h('div', { className: 'tool-section tool-output', hidden: true })
    )
  )
  card.setAttribute('aria-label', `Tool ${call.name}: running`)
  return card
}

/** A question nobody answered (the turn was cancelled, the grace ended, the server restarted): no buttons left to click. */
function closeUnansweredApproval (card, text) {
  if (card.dataset.approval !== 'waiting') return
  card.dataset.approval = 'unanswered'
  card.querySelector('.tool-approval')?.replaceChildren(h('span', { className: 'tool-approval-text', text }))
}

/** Fills a card in from its `tool_result` event. */
export function finishToolCard (card, result) {
  closeUnansweredApproval(card, 'Not run: the turn ended before an answer')
  const state = result.ok ? 'ok' : 'failed'
  card.dataset.status = state
  card.querySelector('.tool-status').textContent = state
  card.querySelector('.tool-duration').textContent = formatMs(result.durationMs ?? 0)
  const out = card.querySelector('.tool-output')
  out.replaceChildren(
    h('h4', { text: result.ok ? 'Result' : 'Error' }),
    h('pre', { className: 'tool-pre' }, h('code', { text: result.ok ? pretty(result.result) : (result.error ?? 'failed') }))
  )
  out.hidden = false
  if (!result.ok) card.open = true
  card.setAttribute('aria-label', `Tool ${result.name}: ${state}`)
}

/** A call whose turn ended without a result (stopped or interrupted). */
export function abandonToolCard (card) {
  closeUnansweredApproval(card, 'Not run: the turn ended before an answer')
  if (card.dataset.status !== 'running') return
  card.dataset.status = 'failed'
  card.querySelector('.tool-status').textContent = 'no result'
}

const DECIDED = {
  approved: 'Approved',
  always: 'Approved (always for this tool)',
  denied: 'Denied',
  timeout: 'Timed out: declined'
}

/** An `approval_request`: the card opens on Approve / Always allow / Deny; a click sends a bubbling `tool-approval` event. */
export function askApproval (card, request) {
  if (card.dataset.approval) return
  card.dataset.approval = 'waiting'
  card.querySelector('.tool-status').textContent = 'waiting for approval'
  const button = (className, text, approved, scope) => {
    const b = h('button', { type: 'button', className: `btn ${className}`, text })
    b.addEventListener('click', () => {
      for (const other of bar.querySelectorAll('button')) other.disabled = true
      card.dispatchEvent(new CustomEvent('tool-approval', { bubbles: true, detail: { callId: request.callId, approved, scope } }))
    })
    return b
  }
  const bar = h('div', { className: 'tool-approval', role: 'group', 'aria-label': 'Approve this tool call?' },
    h('span', { className: 'tool-approval-text', text: 'The assistant wants to run this tool.' }),
    button('approve', 'Approve', true, 'once'),
    button('approve-always', 'Always allow', true, 'always'),
    button('deny', 'Deny', false, 'once'))
  card.querySelector('.tool-body').prepend(bar)
  card.open = true
  card.setAttribute('aria-label', `Tool ${request.name}: waiting for approval`)
}

/** An `approval`: the buttons give way to the decision. */
export function settleApproval (card, approval) {
  const state = approval.approved ? 'approved' : approval.reason === 'timeout' && approval.by === 'timeout' ? 'timeout' : 'denied'
  card.dataset.approval = state
  const text = DECIDED[approval.approved && approval.scope === 'always' ? 'always' : state]
  const bar = card.querySelector('.tool-approval') ?? h('div', { className: 'tool-approval' })
  bar.replaceChildren(h('span', { className: 'tool-approval-text', text }))
  if (!bar.parentNode) card.querySelector('.tool-body').prepend(bar)
  if (card.dataset.status === 'running') card.querySelector('.tool-status').textContent = approval.approved ? 'running' : state === 'timeout' ? 'timed out' : 'denied'
}
