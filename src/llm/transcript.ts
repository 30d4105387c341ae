/** The transcript a summary is written from: one line per message or tool use, in bounded memory however long the session. */
import type { StoredEvent } from '../protocol.js'
import { clip } from '../text.js'

/** Transcript size sent to the model; beyond it the middle of the session is left out. */
export const MAX_TRANSCRIPT_CHARS = 12_000
const MAX_LINE_CHARS = 1_000
/** Room kept for the "[… n lines left out …]" marker. */
const MARKER_CHARS = 40

const line = (s: string) => {
  const flat = s.replace(/\s+/g, ' ').trim()
  return clip(flat, MAX_LINE_CHARS)
}

const brief = (v: unknown) => {
  const s = typeof v === 'string' ? v : JSON.stringify(v ?? null) ?? ''
  return clip(s, 200)
}

/** "User: …", "Assistant: …", "Tool <name>: ok …" / "Tool <name>: failed …"; nothing for other events. */
export function transcriptLine (e: StoredEvent): string | undefined {
  if (e.type === 'user_message') return `User: ${line(e.content)}`
  if (e.type === 'assistant_message' && e.content.trim()) {
    return `Assistant: ${line(e.content)}${e.finishReason === 'stop' ? '' : ` [${e.finishReason}]`}`
  }
  if (e.type === 'tool_result') return `Tool ${e.name}: ${e.ok ? `ok ${brief(e.result)}` : `failed (${brief(e.error)})`}`
  return undefined
}

/**
 * Events are added in order, one at a time. While the lines fit in `maxChars` all are kept; past it the opening
 * (what the session was about, half the room) and the most recent lines (where it got to, the other half) are kept
 * and the middle is counted, so memory stays within about `maxChars` for a session of any length.
 */
export class Transcript {
  /** Set when the lines outgrew `maxChars`: the opening lines, frozen. */
  private head: string[] | undefined
  private headChars = 0
  /** Every line while it fits; past that the most recent lines within the tail's room. */
  private lines: string[] = []
  private size = 0
  private leftOut = 0
  private userMessages = 0

  /** A line longer than half the room is cut, so the opening and the newest line always fit. */
  private readonly maxLine: number

  constructor (private readonly maxChars = MAX_TRANSCRIPT_CHARS) {
    if (!(maxChars >= 4 * MARKER_CHARS)) throw new RangeError(`a transcript needs at least ${4 * MARKER_CHARS} characters`)
    this.maxLine = Math.floor((maxChars - MARKER_CHARS) / 2) - 1
  }

  static of (events: Iterable<StoredEvent>, maxChars?: number): Transcript {
    const t = new Transcript(maxChars)
    for (const e of events) t.add(e)
    return t
  }

  get hasUserMessage (): boolean { return this.userMessages > 0 }

  /** Characters of lines held (with their newlines): at most about `maxChars`, however many events were added. */
  get heldChars (): number { return this.headChars + this.size }

  add (event: StoredEvent): void {
    let text = transcriptLine(event)
    if (text === undefined) return
    if (text.length > this.maxLine) text = clip(text, this.maxLine - 1)
    if (event.type === 'user_message') this.userMessages++
    this.lines.push(text)
    this.size += text.length + 1
    if (this.head === undefined) {
      if (this.size - 1 <= this.maxChars) return
      this.splitHead()
    }
    // Past the limit: the tail keeps the newest lines that fit its half.
    const room = this.maxChars - MARKER_CHARS - this.headChars
    while (this.lines.length > 0 && this.size > room) {
      this.size -= this.lines.shift()!.length + 1
      this.leftOut++
    }
  }

  toString (): string {
    if (this.head === undefined) return this.lines.join('\n')
    return [...this.head, `[… ${this.leftOut} lines left out …]`, ...this.lines].join('\n')
  }

  /** The first time the lines outgrow the limit: the opening lines within half the room become the head. */
  private splitHead (): void {
    const half = Math.floor((this.maxChars - MARKER_CHARS) / 2)
    const head: string[] = []
    let size = 0
    while (this.lines.length > 0 && size + this.lines[0].length + 1 <= half) {
      const first = this.lines.shift()!
      head.push(first)
      size += first.length + 1
    }
    this.head = head
    this.headChars = size
    this.size -= size
  }
}

/** The transcript of `events` as text (see Transcript). */
export function buildTranscript (events: Iterable<StoredEvent>, maxChars = MAX_TRANSCRIPT_CHARS): string {
  return Transcript.of(events, maxChars).toString()
}
