/** WebSocket protocol v1: zod schemas of every client and server frame, the single source of truth. */
import { z } from 'zod'

export const PROTOCOL_VERSION = 1
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
export const SessionId = z.string().regex(SESSION_ID_PATTERN, 'session id must match ^[A-Za-z0-9_-]{1,64}$')

// ── client → server ────────────────────────────────────────────────────────────
/** Content length is checked against MAX_MESSAGE_CHARS at run time (it is configurable). */
export const UserMessageFrame = z.strictObject({
  type: z.literal('user_message'),
  content: z.string().min(1, 'content must not be empty'),
  clientId: z.string().min(1).max(64).optional()
})
export const CancelFrame = z.strictObject({ type: z.literal('cancel'), turnId: z.string().max(64).optional() })
export const PingFrame = z.strictObject({ type: z.literal('ping') })
/** Replaces the socket's credential before it expires (DESIGN §10); nothing is answered when it is accepted. */
export const AuthFrame = z.strictObject({ type: z.literal('auth'), token: z.string().min(1).max(8_192) })
/** Answers an approval_request (DESIGN §13) from any socket of the session; the first answer decides. */
export const ToolApprovalFrame = z.strictObject({
  type: z.literal('tool_approval'),
  callId: z.string().min(1).max(256),
  approved: z.boolean(),
  scope: z.enum(['once', 'always']).optional().describe('always: this principal (or, with auth off, this session) is not asked again for this tool'),
  reason: z.string().max(500).optional()
})
export const ClientFrame = z.discriminatedUnion('type', [UserMessageFrame, CancelFrame, PingFrame, AuthFrame, ToolApprovalFrame])
export type ClientFrame = z.infer<typeof ClientFrame>

// ── server → client ────────────────────────────────────────────────────────────
export const FinishReason = z.enum(['stop', 'length', 'tool_limit', 'cancelled', 'error', 'interrupted'])
export type FinishReason = z.infer<typeof FinishReason>

export const ErrorCode = z.enum([
  'bad_request', 'busy', 'rate_limited', 'not_running', 'too_many_sockets',
  'store_unavailable', 'llm_unavailable', 'llm_error', 'internal_error', 'quota_exceeded', 'busy_server', 'not_pending'
])
export type ErrorCode = z.infer<typeof ErrorCode>

export const Usage = z.object({
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  totalTokens: z.number().int().nonnegative()
})
export type Usage = z.infer<typeof Usage>

export const ModelInfo = z.object({ provider: z.string(), name: z.string(), offline: z.boolean() })
export type ModelInfo = z.infer<typeof ModelInfo>

const stored = { seq: z.number().int().positive(), ts: z.iso.datetime() }

export const UserMessageEvent = z.object({
  type: z.literal('user_message'), ...stored, turnId: z.string(), content: z.string(), clientId: z.string().optional()
})
export const ToolCallEvent = z.object({
  type: z.literal('tool_call'), ...stored, turnId: z.string(), callId: z.string(), name: z.string(),
  arguments: z.unknown().describe('as the model sent them; parsed when valid JSON, else the raw string')
})
export const ToolResultEvent = z.object({
  type: z.literal('tool_result'), ...stored, turnId: z.string(), callId: z.string(), name: z.string(),
  ok: z.boolean(), result: z.unknown().optional(), error: z.string().optional(), durationMs: z.number().nonnegative()
})
export const AssistantMessageEvent = z.object({
  type: z.literal('assistant_message'), ...stored, turnId: z.string(), content: z.string(),
  finishReason: FinishReason, usage: Usage.optional(),
  reasoning: z.string().optional().describe("the turn's reasoning text, whole (its `reasoning` frames concatenated); absent when the model sent none; never sent back to the model")
})
/** The turn waits for a user's decision on this call (it follows the call's tool_call). */
export const ApprovalRequestEvent = z.object({
  type: z.literal('approval_request'), ...stored, turnId: z.string(), callId: z.string(), name: z.string(),
  arguments: z.unknown(), expiresAt: z.iso.datetime().describe('when the call counts as declined (TOOL_APPROVAL_TIMEOUT_MS)')
})
/** The decision on an approval_request: the first answer, or the timeout (`by: "timeout"`, `reason: "timeout"`). */
export const ApprovalEvent = z.object({
  type: z.literal('approval'), ...stored, turnId: z.string(), callId: z.string(), approved: z.boolean(),
  scope: z.enum(['once', 'always']),
  by: z.string().describe('the principal that answered (with auth off: its connectionId), or "timeout"'),
  reason: z.string().optional()
})
export const StoredErrorEvent = z.object({
  type: z.literal('error'), ...stored, code: ErrorCode, message: z.string(), retryable: z.boolean(),
  turnId: z.string().optional(), retryAfterMs: z.number().int().optional()
})
export const ConnectedEvent = z.object({ type: z.literal('connected'), ...stored, connectionId: z.string() })
export const DisconnectedEvent = z.object({
  type: z.literal('disconnected'), ...stored, connectionId: z.string(), reason: z.string().optional()
})

/** Every event that is written to the session's event log. */
export const StoredEvent = z.discriminatedUnion('type', [
  UserMessageEvent, ToolCallEvent, ToolResultEvent, AssistantMessageEvent, StoredErrorEvent, ConnectedEvent, DisconnectedEvent,
  ApprovalRequestEvent, ApprovalEvent
])
export type StoredEvent = z.infer<typeof StoredEvent>
export type StoredEventType = StoredEvent['type']
/** An event before the session gives it its seq and ts. */
export type NewEvent = StoredEvent extends infer E ? (E extends StoredEvent ? Omit<E, 'seq' | 'ts'> : never) : never

export const SessionFrame = z.object({
  type: z.literal('session'),
  protocol: z.literal(PROTOCOL_VERSION),
  sessionId: z.string(),
  resumed: z.boolean(),
  reset: z.boolean().optional().describe('true when ?after was beyond the last stored seq: the replay starts from 1'),
  lastSeq: z.number().int().nonnegative(),
  runningTurnId: z.string().nullable(),
  model: ModelInfo,
  tools: z.array(z.string()),
  pendingApprovals: z.array(ApprovalRequestEvent).describe('approval requests of the running turn still waiting for an answer'),
  limits: z.object({ maxMessageChars: z.number().int(), maxMessageBytes: z.number().int() })
})
export const DeltaFrame = z.object({
  type: z.literal('delta'), turnId: z.string(), index: z.number().int().nonnegative(), text: z.string()
})
/** Reasoning ("thinking") text of the running turn: not stored one by one, replayed on resume like deltas, with its own index. */
export const ReasoningFrame = z.object({
  type: z.literal('reasoning'), turnId: z.string(), index: z.number().int().nonnegative(), text: z.string()
})
export const ErrorFrame = z.object({
  type: z.literal('error'), code: ErrorCode, message: z.string(), retryable: z.boolean(),
  turnId: z.string().optional(), retryAfterMs: z.number().int().optional()
})
export const PongFrame = z.object({ type: z.literal('pong') })
/** The turn waits for a model slot (MAX_CONCURRENT_TURNS): its 1-based place in the queue, sent again as it moves. */
export const QueuedFrame = z.object({ type: z.literal('queued'), turnId: z.string(), position: z.number().int().positive() })

export const ServerFrame = z.union([SessionFrame, DeltaFrame, ReasoningFrame, StoredEvent, ErrorFrame, PongFrame, QueuedFrame])
export type SessionFrame = z.infer<typeof SessionFrame>
export type DeltaFrame = z.infer<typeof DeltaFrame>
export type ReasoningFrame = z.infer<typeof ReasoningFrame>
export type ErrorFrame = z.infer<typeof ErrorFrame>
export type QueuedFrame = z.infer<typeof QueuedFrame>
export type ServerFrame = SessionFrame | DeltaFrame | ReasoningFrame | StoredEvent | ErrorFrame | QueuedFrame | { type: 'pong' }

/** WebSocket close codes used by the server (DESIGN §4). */
export const CloseCode = {
  normal: 1000,
  policy: 1008,
  tooLarge: 1009,
  internal: 1011,
  restarting: 1012,
  tryAgainLater: 1013,
  badSessionId: 4400,
  unauthenticated: 4401,
  forbidden: 4403,
  tooSlow: 4408
} as const

/** The machine-readable protocol served at /protocol.json and linked from the README. */
export function protocolJsonSchema (): Record<string, unknown> {
  const schema = (s: z.ZodType) => z.toJSONSchema(s, { unrepresentable: 'any', io: 'output' })
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Realtime AI Backend WebSocket protocol',
    version: PROTOCOL_VERSION,
    endpoint: '/ws/session/{id}?after={seq}',
    closeCodes: CloseCode,
    clientFrame: schema(ClientFrame),
    serverFrame: schema(ServerFrame),
    storedEvent: schema(StoredEvent)
  }
}
