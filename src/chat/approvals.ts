/**
 * Human approval of tool calls (DESIGN §13) for one live session: the stored approval_request, the turn's wait,
 * the first answer from any socket (later ones: not_pending), the timeout, and "always" remembered in the store.
 */
import type { Logger } from '../logger.js'
import type { ErrorCode, ErrorFrame, NewEvent, StoredEvent } from '../protocol.js'
import type { SessionRepository } from '../store/types.js'
import type { Peer } from './peer.js'

type ApprovalRequest = Extract<StoredEvent, { type: 'approval_request' }>
export type ApprovalDecision = { approved: true } | { approved: false; error: string }

interface Pending {
  event: ApprovalRequest
  settle: (decision: ApprovalDecision) => void
}

export interface ApprovalsOptions {
  sessionId: string
  /** The session's owner; null with auth off (then "always" holds for this session only). */
  owner: string | null
  record: (event: NewEvent) => StoredEvent
  refuse: (peer: Peer, code: ErrorCode, message: string, extra?: Partial<ErrorFrame>) => void
  store: Pick<SessionRepository, 'rememberApproval' | 'isApprovalRemembered'>
  timeoutMs: number
  log: Logger
}

const declined = (reason?: string): string =>
  `The user declined this tool call; it was not run.${reason ? ` Their reason: ${reason}` : ''} Do not call it again unless they ask.`

export class Approvals {
  private readonly pending = new Map<string, Pending>()
  /** Who "always" is remembered for: the principal, or this session with auth off. */
  private readonly subject: string

  constructor (private readonly opts: ApprovalsOptions) {
    this.subject = opts.owner ?? `session:${opts.sessionId}`
  }

  /** The requests still waiting (for the `session` frame's `pendingApprovals`). */
  get waiting (): ApprovalRequest[] { return [...this.pending.values()].map((p) => p.event) }

  /**
   * Asks about one call and resolves with the decision: at once when "always" was chosen before; otherwise after
   * the stored approval_request, once answered, timed out (declined, stored with reason "timeout") or the turn
   * stopped (`signal`: declined, nothing stored — the turn's own ending tells the rest).
   */
  async ask ({ turnId, callId, name, args, signal }: { turnId: string; callId: string; name: string; args: unknown; signal: AbortSignal }): Promise<ApprovalDecision> {
    const { store, timeoutMs, log } = this.opts
    try {
      if (await store.isApprovalRemembered({ subject: this.subject, tool: name })) return { approved: true }
    } catch (err) {
      // Unknown is not "always": ask.
      log.warn({ err, tool: name }, 'could not read remembered approvals; asking')
    }
    if (signal.aborted) return { approved: false, error: 'cancelled' }
    if (this.pending.has(callId)) return { approved: false, error: `a call with id ${callId} is already waiting for approval` }
    const event = this.opts.record({
      type: 'approval_request', turnId, callId, name, arguments: args, expiresAt: new Date(Date.now() + timeoutMs).toISOString()
    }) as ApprovalRequest
    return await new Promise<ApprovalDecision>((resolve) => {
      const timer = setTimeout(() => {
        if (this.pending.get(callId)?.event !== event) return
        this.pending.delete(callId)
        this.opts.record({ type: 'approval', turnId, callId, approved: false, scope: 'once', by: 'timeout', reason: 'timeout' })
        settle({ approved: false, error: 'The user did not answer the approval request in time, so the call was declined and not run.' })
      }, timeoutMs)
      const onAbort = () => {
        if (this.pending.get(callId)?.event === event) this.pending.delete(callId)
        settle({ approved: false, error: 'cancelled' })
      }
      const settle = (decision: ApprovalDecision) => {
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        resolve(decision)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.pending.set(callId, { event, settle })
    })
  }

  /** A `tool_approval` frame: the first answer decides (synchronously, so two at once cannot both win). */
  answer (peer: Peer, frame: { callId: string; approved: boolean; scope?: 'once' | 'always'; reason?: string }): void {
    const waiting = this.pending.get(frame.callId)
    if (!waiting) {
      this.opts.refuse(peer, 'not_pending', `no approval is pending for call ${frame.callId}: it was answered, timed out, or its turn ended`)
      return
    }
    this.pending.delete(frame.callId)
    const { event } = waiting
    // Only an approval is remembered: "always deny" would silently fail the tool forever.
    const scope = frame.approved ? frame.scope ?? 'once' : 'once'
    this.opts.record({
      type: 'approval',
      turnId: event.turnId,
      callId: event.callId,
      approved: frame.approved,
      scope,
      by: this.opts.owner ?? peer.connectionId,
      ...(frame.reason ? { reason: frame.reason } : {})
    })
    if (scope === 'always') {
      this.opts.store.rememberApproval({ subject: this.subject, tool: event.name }).catch((err: unknown) => {
        this.opts.log.warn({ err, tool: event.name }, 'could not remember an "always" approval; the next call will ask again')
      })
    }
    waiting.settle(frame.approved ? { approved: true } : { approved: false, error: declined(frame.reason) })
  }
}
