/** A counted turn's token estimate (DESIGN §10): every model request's prompt and everything the model wrote, cut once past what is left. */

/** About four characters a token, as the history budget counts. */
const CHARS_PER_TOKEN = 4

export interface TokenMeter {
  /**
   * Before each model request. Its prompt is the whole context so far (the history, then every step's text, tool
   * calls and tool results): false, and nothing counted, when sending it would pass what is left.
   */
  step (): boolean
  /** Text the model streamed. */
  text (chars: number): void
  /** A tool call's arguments as the model wrote them (completion), which the next prompt carries too. */
  toolCall (chars: number): void
  /** A tool result as the model will read it in the next prompt. */
  toolResult (chars: number): void
  /** Tokens counted so far (whole tokens). */
  readonly estimated: number
}

/**
 * `remaining` null: nothing is cut, only counted. `onOver` is called once, when the estimate passes `remaining`
 * (after text or a tool call) or a step would (then that request is not made).
 */
export function createTokenMeter ({ promptTokens, remaining, onOver }: {
  promptTokens: number
  remaining: number | null
  onOver: () => void
}): TokenMeter {
  let context = promptTokens
  let spent = 0
  let over = false
  const passed = (tokens: number): boolean => remaining !== null && tokens > remaining
  const cut = (): void => { if (!over) { over = true; onOver() } }
  const wrote = (chars: number): void => {
    const tokens = chars / CHARS_PER_TOKEN
    spent += tokens
    context += tokens
    if (passed(Math.ceil(spent))) cut()
  }
  return {
    step () {
      if (over || passed(Math.ceil(spent + context))) { cut(); return false }
      spent += context
      return true
    },
    text: wrote,
    toolCall: wrote,
    toolResult (chars) { context += chars / CHARS_PER_TOKEN },
    get estimated () { return Math.ceil(spent) }
  }
}
