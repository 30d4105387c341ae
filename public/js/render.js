/** The conversation view: one <article> per turn (user bubble, tool cards, streamed markdown answer, outcome). */
import { h } from './dom.js'
import { renderMarkdown } from './markdown.js'
import { createToolCard, finishToolCard, abandonToolCard, askApproval, settleApproval } from './tools.js'
import { createAutoScroll } from './scroll.js'

const OUTCOME = {
  cancelled: 'Stopped',
  length: 'Cut off: the answer reached the length limit',
  tool_limit: 'Stopped: too many tool steps',
  error: 'The answer failed',
  interrupted: 'Interrupted: the server restarted during this answer'
}

export function createMessageView ({ list, scroller, jumpButton, emptyState }) {
  const turns = new Map() // turnId → view parts
  const pending = new Map() // clientId → view parts (sent, not yet stored)
  const dirty = new Map() // turnId → text waiting for the next frame
  let frameRequested = false
  let runningId = null // may be named (session frame) before its turn is replayed
  const scroll = createAutoScroll({ scroller, jumpButton })

  function build ({ content, pendingId }) {
    const thinking = h('div', { className: 'thinking', hidden: true },
      h('span', { className: 'dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')),
      h('span', { text: 'Thinking…' }))
    // The model's reasoning, collapsed: it opens on click, while it streams and after.
    const reasoning = h('details', { className: 'reasoning', hidden: true, dataset: { state: 'streaming' } },
      h('summary', { className: 'reasoning-summary' }, h('span', { className: 'reasoning-label', text: 'Thinking' })),
      h('div', { className: 'reasoning-text' }))
    const parts = {
      el: null,
      reasoning,
      reasoningText: '',
      user: h('div', { className: 'bubble user-bubble', text: content ?? '' }),
      tools: h('div', { className: 'tools' }),
      thinking,
      answer: h('div', { className: 'answer markdown' }),
      notes: h('div', { className: 'turn-notes' }),
      assistant: null,
      cards: new Map(),
      text: ''
    }
    parts.assistant = h('div', { className: 'msg msg-assistant' },
      h('div', { className: 'avatar', 'aria-hidden': 'true', text: 'AI' }),
      h('div', { className: 'assistant-body' }, reasoning, parts.tools, thinking, parts.answer, parts.notes))
    parts.el = h('article', { className: 'turn', dataset: { state: 'pending', ...(pendingId ? { clientId: pendingId } : {}) } },
      h('div', { className: 'msg msg-user' }, parts.user),
      parts.assistant)
    if (content === undefined) parts.el.querySelector('.msg-user').hidden = true
    return parts
  }

  function append (parts) {
    list.append(parts.el)
    emptyState.hidden = true
    scroll.contentChanged()
  }

  function turn (turnId) {
    let parts = turns.get(turnId)
    if (!parts) {
      parts = build({})
      parts.el.dataset.turnId = turnId
      parts.el.dataset.state = 'waiting'
      turns.set(turnId, parts)
      append(parts)
      if (turnId === runningId) applyRunning(parts, true)
    }
    return parts
  }

  function applyRunning (parts, running) {
    if (parts.el.dataset.state === 'done') return
    parts.el.dataset.state = running ? 'running' : 'waiting'
    parts.assistant.setAttribute('aria-busy', String(running))
    syncThinking(parts)
  }

  function setText (turnId, text) {
    dirty.set(turnId, text)
    if (frameRequested) return
    frameRequested = true
    // Re-render markdown at most once per frame however fast the deltas come.
    requestAnimationFrame(() => {
      frameRequested = false
      for (const [id, t] of dirty) paintText(turns.get(id), t)
      dirty.clear()
      scroll.contentChanged()
    })
  }

  function paintText (parts, text) {
    if (!parts || parts.text === text) return
    parts.text = text
    renderMarkdown(parts.answer, text)
    syncThinking(parts)
  }

  function syncThinking (parts) {
    const running = parts.el.dataset.state === 'running' || parts.el.dataset.state === 'pending'
    // Streamed reasoning shows itself: the dots are for a wait with nothing to show.
    parts.thinking.hidden = !(running && parts.text === '' && parts.reasoningText === '')
  }

  /** Paints the reasoning text (plain text, never markdown: it is the model's scratch pad). */
  function paintReasoning (parts, text, done) {
    if (!text) return
    if (parts.reasoningText !== text) {
      parts.reasoningText = text
      parts.reasoning.querySelector('.reasoning-text').textContent = text
    }
    parts.reasoning.hidden = false
    parts.reasoning.dataset.state = done ? 'done' : 'streaming'
    syncThinking(parts)
  }

  return {
    scroll,
    clear () {
      turns.clear(); pending.clear(); dirty.clear()
      runningId = null
      list.replaceChildren()
      emptyState.hidden = false
    },
    /** Shows a sent message right away; it becomes the turn when the server stores it. */
    addPending (clientId, content) {
      const parts = build({ content, pendingId: clientId })
      pending.set(clientId, parts)
      append(parts)
      syncThinking(parts)
      scroll.toBottom()
    },
    dropPending (clientId) {
      pending.get(clientId)?.el.remove()
      pending.delete(clientId)
      if (list.children.length === 0) emptyState.hidden = false
    },
    userMessage (event) {
      if (turns.has(event.turnId)) return
      const adopted = event.clientId ? pending.get(event.clientId) : undefined
      const parts = adopted ?? build({ content: event.content })
      pending.delete(event.clientId)
      parts.user.textContent = event.content
      parts.el.querySelector('.msg-user').hidden = false
      parts.el.dataset.turnId = event.turnId
      parts.el.dataset.state = 'waiting'
      delete parts.el.dataset.clientId
      turns.set(event.turnId, parts)
      if (!adopted) append(parts)
      applyRunning(parts, event.turnId === runningId)
    },
    setRunning (turnId, running) {
      if (running) runningId = turnId
      else if (runningId === turnId) runningId = null
      const parts = turns.get(turnId)
      if (parts) applyRunning(parts, running)
    },
    setText,
    /** The running turn's reasoning so far (contiguous pieces joined). */
    setReasoning (turnId, text) {
      paintReasoning(turn(turnId), text, false)
      scroll.contentChanged()
    },
    toolCall (event) {
      const parts = turn(event.turnId)
      if (parts.cards.has(event.callId)) return
      const card = createToolCard(event)
      parts.cards.set(event.callId, card)
      parts.tools.append(card)
      scroll.contentChanged()
    },
    toolResult (event) {
      const parts = turn(event.turnId)
      let card = parts.cards.get(event.callId)
      if (!card) { this.toolCall(event); card = parts.cards.get(event.callId) }
      finishToolCard(card, event)
      scroll.contentChanged()
    },
    approvalRequest (event) {
      const parts = turn(event.turnId)
      let card = parts.cards.get(event.callId)
      if (!card) { this.toolCall(event); card = parts.cards.get(event.callId) }
      askApproval(card, event)
      scroll.contentChanged()
    },
    approval (event) {
      const card = turn(event.turnId).cards.get(event.callId)
      if (card) settleApproval(card, event)
      scroll.contentChanged()
    },
    finish (event) {
      const parts = turn(event.turnId)
      dirty.delete(event.turnId)
      parts.el.dataset.state = 'done'
      parts.el.dataset.finish = event.finishReason
      parts.assistant.setAttribute('aria-busy', 'false')
      paintText(parts, event.content)
      // The stored whole wins over the pieces (a reload has only it); a turn without reasoning keeps its block hidden.
      if (event.reasoning) paintReasoning(parts, event.reasoning, true)
      else if (parts.reasoningText) parts.reasoning.dataset.state = 'done'
      parts.thinking.hidden = true
      for (const card of parts.cards.values()) abandonToolCard(card)
      const outcome = OUTCOME[event.finishReason]
      parts.notes.querySelector('.outcome')?.remove()
      if (outcome) parts.notes.prepend(h('p', { className: `outcome outcome-${event.finishReason}`, text: outcome }))
      if (event.finishReason !== 'stop' && !event.content) parts.answer.hidden = true
      scroll.contentChanged()
    },
    /** A stored error inside a turn (model or store failure). */
    turnError (event, message) {
      const parts = turn(event.turnId)
      parts.notes.append(h('p', { className: 'turn-error', role: 'note', text: message }))
      scroll.contentChanged()
    }
  }
}
