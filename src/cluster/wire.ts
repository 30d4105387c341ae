/**
 * The messages instances send each other over the bus: one line of header, `kind from run link`, then a body.
 * Frames ride as the JSON text they already are (no second JSON encoding per token); JSON text never holds a raw
 * newline, so several frames of one event-loop turn travel as one message, a line each.
 */

/** a: attach (body: AttachRequest JSON) · f: a client frame · d: the socket left (body: why) — proxy → owner.
 *  k: attach received (the owner is alive; its session may take a while to load) · o: frames for sockets of the
 *  receiving instance (link `-`; body: `link<TAB>frame` a line) · c: close (body: `code reason`) — owner → proxy.
 *  h: heartbeat, either way (link `-`). */
export type Kind = 'a' | 'f' | 'd' | 'k' | 'o' | 'c' | 'h'

export interface Message {
  kind: Kind
  /** The sending instance's INSTANCE_ID (its channel). */
  from: string
  /** The sending process's run: a new one after a restart under the same INSTANCE_ID, whose links are gone. */
  run: string
  link: string
  body: string
}

/** What a proxy asks the owner for a socket that reached it. */
export interface AttachRequest {
  sessionId: string
  after?: number
  principal?: string
  address?: string
  connectionId: string
}

const KINDS = new Set<string>(['a', 'f', 'd', 'k', 'o', 'c', 'h'])

export function encode (kind: Kind, from: string, run: string, link: string, body = ''): string {
  return `${kind} ${from} ${run} ${link}\n${body}`
}

/** Null for anything that is not one of ours (another program on the same Redis, say). */
export function decode (message: string): Message | null {
  const end = message.indexOf('\n')
  if (end < 0) return null
  const [kind, from, run, link, extra] = message.slice(0, end).split(' ')
  if (!KINDS.has(kind) || !from || !run || !link || extra !== undefined) return null
  return { kind: kind as Kind, from, run, link, body: message.slice(end + 1) }
}

/** `code reason` of a close message; a code outside 1000–4999 reads as 1011. */
export function decodeClose (body: string): { code: number; reason: string } {
  const space = body.indexOf(' ')
  const code = Number(space < 0 ? body : body.slice(0, space))
  return { code: Number.isInteger(code) && code >= 1000 && code <= 4999 ? code : 1011, reason: space < 0 ? '' : body.slice(space + 1) }
}
