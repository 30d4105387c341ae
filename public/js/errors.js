/** Plain-language text for server error codes and WebSocket close codes. */

const seconds = (ms) => Math.max(1, Math.ceil(ms / 1000))

/** Text for an `error` frame (refusals and in-turn failures alike). */
export function errorText (frame) {
  switch (frame.code) {
    case 'rate_limited':
      return frame.retryAfterMs
        ? `You're sending messages too quickly. You can send again in ${seconds(frame.retryAfterMs)} s.`
        : "You're sending messages too quickly. Wait a moment and try again."
    case 'busy':
      return 'The assistant is still answering. Wait for it to finish, or press Stop.'
    case 'llm_unavailable':
      return 'The model is unavailable right now, so there is no answer. Try again in a moment.'
    case 'llm_error':
      return 'The model stopped in the middle of its answer. What arrived is kept; you can ask again.'
    case 'store_unavailable':
      if (frame.turnId && frame.retryable === false) return 'Storage refused your message, so it was not saved or answered.'
      return frame.turnId
        ? 'Storage is slow right now: your message will be saved, but it was not answered. Ask again shortly.'
        : 'Storage is unavailable, so your message was not sent. Try again shortly.'
    case 'quota_exceeded':
      return "You have used today's token budget, so this message was not answered. It renews at midnight UTC."
    case 'too_many_sockets':
      return 'This chat is open in too many tabs. Close one and reload.'
    case 'not_running':
      return 'There is no answer running to stop.'
    case 'bad_request':
      return `The server refused that: ${frame.message}`
    default:
      return `Something went wrong on the server${frame.message ? `: ${frame.message}` : '.'}`
  }
}

/** Codes that refuse a user_message without starting a turn: the text goes back into the composer. */
export const REFUSALS = new Set(['busy', 'rate_limited', 'store_unavailable', 'bad_request', 'too_many_sockets', 'quota_exceeded'])

export const formatBytes = (n) => (n < 1024 ? `${n} bytes` : `${Math.floor(n / 1024)} KiB`)

/** Text for a socket close, or null when the close needs no message of its own. */
export function closeText (code, limits) {
  switch (code) {
    case 1009:
      return `That message was too large for the server${limits ? ` (limit ${formatBytes(limits.maxMessageBytes)})` : ''}. Shorten it and send again.`
    case 1008:
      return 'The server refused this connection (origin not allowed).'
    case 4400:
      return 'This chat id is not valid. Start a new chat.'
    case 4401:
      return 'Your sign-in has expired or was refused — sign in again.'
    case 4403:
      return 'This chat belongs to someone else. Start a new chat to continue.'
    case 1012:
      return 'The server is restarting. Reconnecting…'
    case 4408:
      return 'The connection was too slow and was reset. Resuming…'
    case 1011:
      return 'The server hit an internal error. Reconnecting…'
    default:
      return null
  }
}
