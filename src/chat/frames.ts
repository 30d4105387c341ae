/** Turns one raw incoming WebSocket message into a validated ClientFrame or a bad_request reason. */
import { ClientFrame } from '../protocol.js'
import { wellFormed } from '../text.js'

const MAX_DETAIL = 300

/**
 * A short, safe rendering of the client's `type` value. JSON.stringify of the raw value would
 * recurse: a deeply nested `"type": [[[…]]]` overflowed the stack and the frame got internal_error.
 */
function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
  if (value === undefined) return 'undefined'
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value)
  return Array.isArray(value) ? '(an array)' : '(an object)'
}

export type ParsedFrame = { ok: true; frame: ClientFrame } | { ok: false; message: string }

export function parseClientFrame (raw: Buffer | ArrayBuffer | Buffer[], isBinary: boolean, maxChars: number): ParsedFrame {
  if (isBinary) return { ok: false, message: 'binary frames are not supported: send JSON text frames' }
  const text = Array.isArray(raw) ? Buffer.concat(raw).toString('utf8') : Buffer.from(raw as ArrayBuffer).toString('utf8')
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    return { ok: false, message: `invalid JSON: ${(err as Error).message}` }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, message: 'a frame must be a JSON object with a "type" field' }
  }
  const type = (json as { type?: unknown }).type
  if (type !== 'user_message' && type !== 'cancel' && type !== 'ping' && type !== 'auth' && type !== 'tool_approval') {
    return { ok: false, message: `unknown frame type ${describe(type)}: expected user_message, cancel, ping, auth or tool_approval` }
  }
  const parsed = ClientFrame.safeParse(json)
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || type}: ${i.message}`).join('; ')
    // An unknown key is echoed in the issue: keep a 60 KB key name out of the reply.
    return { ok: false, message: `invalid ${type} frame: ${issues.length > MAX_DETAIL ? `${issues.slice(0, MAX_DETAIL)}…` : issues}` }
  }
  const frame = parsed.data
  if (frame.type === 'user_message') {
    // A lone surrogate (`"\ud800"`) is valid JSON but not text: U+FFFD here, so the ack, the store and a resend agree.
    frame.content = wellFormed(frame.content)
    if (frame.clientId !== undefined) frame.clientId = wellFormed(frame.clientId)
  }
  if (frame.type === 'user_message' && frame.content.length > maxChars) {
    return { ok: false, message: `content is ${frame.content.length} characters; the limit is ${maxChars}` }
  }
  if (frame.type === 'user_message' && frame.content.trim() === '') {
    return { ok: false, message: 'content must not be blank' }
  }
  return { ok: true, frame }
}
