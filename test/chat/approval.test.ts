/** Human approval of tool calls over real sockets (DESIGN §13): approve, deny, timeout, always, races, reload, cancel. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually, startApp, storedEvents, TestClient, type Frame, type RunningApp } from '../support/app.js'
import { authEnv, connectAs, newUser } from '../support/auth.js'

let server: RunningApp
let quick: RunningApp
let short: RunningApp
let signed: RunningApp
let n = 0
const newId = () => `ap-${Date.now().toString(36)}-${n++}`
const TOOL = 'get_system_metrics'

beforeAll(async () => {
  // The offline model calls get_system_metrics for a CPU question: that tool asks first.
  server = await startApp({ env: { TOOLS_REQUIRE_APPROVAL: `other_tool, ${TOOL}`, DISCONNECT_GRACE_MS: '600000' } })
  quick = await startApp({ env: { TOOLS_REQUIRE_APPROVAL: '*', TOOL_APPROVAL_TIMEOUT_MS: '300', DISCONNECT_GRACE_MS: '600000' } })
  short = await startApp({ env: { TOOLS_REQUIRE_APPROVAL: TOOL, DISCONNECT_GRACE_MS: '150' } })
  signed = await startApp({ env: authEnv({ TOOLS_REQUIRE_APPROVAL: TOOL, DISCONNECT_GRACE_MS: '600000' }) })
})
afterAll(async () => {
  await Promise.all([server, quick, short, signed].map((app) => app.close()))
})

/** Sends a CPU question and waits for its approval_request. */
async function ask (client: TestClient): Promise<Frame> {
  client.send({ type: 'user_message', content: 'What is the CPU load?' })
  return await client.waitFor((f) => f.type === 'approval_request')
}

const types = (frames: Frame[]) => frames.filter((f) => typeof f.seq === 'number' && f.type !== 'connected' && f.type !== 'disconnected').map((f) => f.type)

async function storedLog (app: RunningApp, id: string, untilType = 'assistant_message', count = 1): Promise<Frame[]> {
  return await eventually(async () => {
    const events = await storedEvents(app, id)
    return events.filter((e) => e.type === untilType).length >= count ? events : null
  })
}

describe('tool approval', () => {
  it('approve: the turn waits after tool_call + approval_request, then the tool runs and the answer uses it', async () => {
    const id = newId()
    const client = await TestClient.connect(server.wsUrl(id))
    const session = await client.waitFor((f) => f.type === 'session')
    expect(session.pendingApprovals).toEqual([])
    const started = Date.now()
    const request = await ask(client)
    const call = client.ofType('tool_call')[0]
    expect(request).toMatchObject({ turnId: call.turnId, callId: call.callId, name: TOOL, arguments: {} })
    expect(request.seq).toBe(call.seq + 1)
    const expires = Date.parse(request.expiresAt)
    expect(expires).toBeGreaterThanOrEqual(started + 300_000 - 50)
    expect(expires).toBeLessThanOrEqual(Date.now() + 300_000)
    expect(client.ofType('tool_result')).toEqual([])

    client.send({ type: 'tool_approval', callId: request.callId, approved: true })
    const done = await client.waitTurnEnd()
    const connectionId = client.ofType('connected')[0].connectionId
    expect(client.ofType('approval')).toEqual([expect.objectContaining({ turnId: call.turnId, callId: call.callId, approved: true, scope: 'once', by: connectionId })])
    expect(client.ofType('tool_result')[0]).toMatchObject({ callId: call.callId, ok: true, result: { cpu: expect.any(Object) } })
    expect(done.finishReason).toBe('stop')
    expect(done.content).toMatch(/^CPU load is/)
    expect(types(client.frames)).toEqual(['user_message', 'tool_call', 'approval_request', 'approval', 'tool_result', 'assistant_message'])
    expect(types(await storedLog(server, id))).toEqual(['user_message', 'tool_call', 'approval_request', 'approval', 'tool_result', 'assistant_message'])
    await client.close()
  })

  it('deny: tool_result ok:false tells the model the user declined (with the reason), and the turn goes on', async () => {
    const client = await TestClient.connect(server.wsUrl(newId()))
    const request = await ask(client)
    client.send({ type: 'tool_approval', callId: request.callId, approved: false, reason: 'not now' })
    const done = await client.waitTurnEnd()
    expect(client.ofType('approval')[0]).toMatchObject({ callId: request.callId, approved: false, scope: 'once', reason: 'not now' })
    const result = client.ofType('tool_result')[0]
    expect(result).toMatchObject({ callId: request.callId, ok: false })
    expect(result.error).toMatch(/^The user declined this tool call; it was not run\. Their reason: not now/)
    // The offline model read the refusal and answered from it.
    expect(done).toMatchObject({ finishReason: 'stop' })
    expect(done.content).toContain(`The ${TOOL} tool failed: The user declined`)
    await client.close()
  })

  it('timeout: declined, stored as approval {approved:false, by:"timeout", reason:"timeout"}; a late answer is not_pending', async () => {
    const id = newId()
    const client = await TestClient.connect(quick.wsUrl(id))
    const request = await ask(client)
    const done = await client.waitTurnEnd()
    const approval = client.ofType('approval')[0]
    expect(approval).toMatchObject({ callId: request.callId, approved: false, scope: 'once', by: 'timeout', reason: 'timeout' })
    expect(Date.parse(approval.ts)).toBeGreaterThanOrEqual(Date.parse(request.expiresAt) - 5)
    expect(client.ofType('tool_result')[0]).toMatchObject({ ok: false, error: expect.stringMatching(/did not answer the approval request in time/) })
    expect(done.finishReason).toBe('stop')
    client.send({ type: 'tool_approval', callId: request.callId, approved: true })
    const refusal = await client.waitFor((f) => f.type === 'error' && f.code === 'not_pending')
    expect(refusal).toMatchObject({ retryable: false })
    expect(refusal.seq).toBeUndefined()
    expect((await storedLog(quick, id)).filter((e) => e.type === 'approval')).toHaveLength(1)
    await client.close()
  })

  it('always: the next call of that tool in the session runs without asking; another session still asks', async () => {
    const id = newId()
    const client = await TestClient.connect(server.wsUrl(id))
    const first = await ask(client)
    client.send({ type: 'tool_approval', callId: first.callId, approved: true, scope: 'always' })
    const done = await client.waitTurnEnd()
    expect(client.ofType('approval')[0]).toMatchObject({ approved: true, scope: 'always' })
    // Remembered durably in the store (auth off: for this session).
    await eventually(() => server.app.services.store.isApprovalRemembered({ subject: `session:${id}`, tool: TOOL }))

    client.send({ type: 'user_message', content: 'And the CPU load now?' })
    const second = await client.waitFor((f) => f.type === 'assistant_message' && f.turnId !== done.turnId)
    const secondTurn = client.frames.filter((f) => f.turnId === second.turnId && typeof f.seq === 'number').map((f) => f.type)
    expect(secondTurn).toEqual(['user_message', 'tool_call', 'tool_result', 'assistant_message'])
    expect(client.ofType('tool_result').at(-1)).toMatchObject({ ok: true })
    expect(client.ofType('approval_request')).toHaveLength(1)

    const other = await TestClient.connect(server.wsUrl(newId()))
    const asked = await ask(other)
    expect(asked.name).toBe(TOOL)
    other.send({ type: 'tool_approval', callId: asked.callId, approved: false })
    await other.waitTurnEnd()
    await Promise.all([client.close(), other.close()])
  })

  it('two sockets answering at once: one approval is stored and seen by both, the other answer gets not_pending', async () => {
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    const b = await TestClient.connect(server.wsUrl(id))
    const request = await ask(a)
    await b.waitFor((f) => f.type === 'approval_request')
    a.send({ type: 'tool_approval', callId: request.callId, approved: true })
    b.send({ type: 'tool_approval', callId: request.callId, approved: false })
    const [doneA, doneB] = await Promise.all([a.waitTurnEnd(), b.waitTurnEnd()])
    expect(doneA.seq).toBe(doneB.seq)
    await Promise.race([a.waitFor((f) => f.code === 'not_pending'), b.waitFor((f) => f.code === 'not_pending')])
    const refusals = [...a.ofType('error'), ...b.ofType('error')]
    expect(refusals.map((f) => f.code)).toEqual(['not_pending'])
    for (const c of [a, b]) expect(c.ofType('approval')).toHaveLength(1)
    expect(a.ofType('approval')[0]).toEqual(b.ofType('approval')[0])
    // The winner is the one the other socket was refused after.
    const winner = a.ofType('approval')[0]
    expect(winner.approved).toBe(b.ofType('error').length === 1)
    expect(a.ofType('tool_result')[0].ok).toBe(winner.approved)
    expect((await storedLog(server, id)).filter((e) => e.type === 'approval')).toHaveLength(1)
    await Promise.all([a.close(), b.close()])
  })

  it('a reload while waiting: the request comes back in the replay and pendingApprovals, and can be answered', async () => {
    const id = newId()
    const a = await TestClient.connect(server.wsUrl(id))
    const request = await ask(a)
    await a.terminate()
    const b = await TestClient.connect(server.wsUrl(id, 0))
    const session = await b.waitFor((f) => f.type === 'session')
    expect(session.runningTurnId).toBe(request.turnId)
    expect(session.pendingApprovals).toEqual([request])
    const replayed = await b.waitFor((f) => f.type === 'approval_request')
    expect(replayed).toEqual(request)
    b.send({ type: 'tool_approval', callId: request.callId, approved: true })
    const done = await b.waitTurnEnd(request.turnId)
    expect(done.finishReason).toBe('stop')
    expect(b.ofType('tool_result')[0]).toMatchObject({ callId: request.callId, ok: true })
    // Nothing pending any more: a new socket is told so.
    const c = await TestClient.connect(server.wsUrl(id))
    expect((await c.waitFor((f) => f.type === 'session')).pendingApprovals).toEqual([])
    await Promise.all([b.close(), c.close()])
  })

  it('cancel while waiting ends the turn as cancelled; the request is no longer pending', async () => {
    const id = newId()
    const client = await TestClient.connect(server.wsUrl(id))
    const request = await ask(client)
    client.send({ type: 'cancel', turnId: request.turnId })
    const done = await client.waitTurnEnd()
    expect(done.finishReason).toBe('cancelled')
    expect(client.ofType('tool_result')[0]).toMatchObject({ callId: request.callId, ok: false, error: 'cancelled' })
    client.send({ type: 'tool_approval', callId: request.callId, approved: true })
    expect(await client.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'not_pending' })
    const log = await storedLog(server, id)
    expect(log.filter((e) => e.type === 'approval')).toEqual([])
    expect(types(log)).toEqual(['user_message', 'tool_call', 'approval_request', 'tool_result', 'assistant_message'])
    await client.close()
  })

  it('the disconnect grace ends a waiting turn like any other: cancelled, nothing pending, no approval stored', async () => {
    const id = newId()
    const client = await TestClient.connect(short.wsUrl(id))
    const request = await ask(client)
    await client.close()
    const log = await storedLog(short, id)
    expect(log.find((e) => e.type === 'assistant_message')).toMatchObject({ turnId: request.turnId, finishReason: 'cancelled' })
    expect(log.find((e) => e.type === 'tool_result')).toMatchObject({ callId: request.callId, ok: false, error: 'cancelled' })
    expect(log.filter((e) => e.type === 'approval')).toEqual([])
  })

  it('signed in: "by" is the principal, and "always" holds for that principal in every session, not for others', async () => {
    const [alice, bob] = [await newUser('alice'), await newUser('bob')]
    const first = await connectAs(signed, alice, newId())
    const request = await ask(first)
    first.send({ type: 'tool_approval', callId: request.callId, approved: true, scope: 'always' })
    await first.waitTurnEnd()
    expect(first.ofType('approval')[0]).toMatchObject({ approved: true, scope: 'always', by: alice.sub })
    await eventually(() => signed.app.services.store.isApprovalRemembered({ subject: alice.sub, tool: TOOL }))

    // Another session of alice's: no question.
    const again = await connectAs(signed, alice, newId())
    again.send({ type: 'user_message', content: 'What is the CPU load?' })
    await again.waitTurnEnd()
    expect(again.ofType('approval_request')).toEqual([])
    expect(again.ofType('tool_result')[0]).toMatchObject({ ok: true })
    // Bob is asked.
    const other = await connectAs(signed, bob, newId())
    const asked = await ask(other)
    other.send({ type: 'tool_approval', callId: asked.callId, approved: false })
    await other.waitTurnEnd()
    expect(other.ofType('approval')[0]).toMatchObject({ approved: false, by: bob.sub })
    await Promise.all([first.close(), again.close(), other.close()])
  })

  it('an answer for a call nobody asked about is not_pending; a malformed one is bad_request', async () => {
    const client = await TestClient.connect(server.wsUrl(newId()))
    client.send({ type: 'tool_approval', callId: 'nope', approved: true })
    expect(await client.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'not_pending', retryable: false })
    client.send({ type: 'tool_approval', callId: 'nope', approved: 'yes' })
    expect(await client.waitFor((f) => f.type === 'error' && f.code === 'bad_request')).toMatchObject({ message: expect.stringMatching(/invalid tool_approval frame/) })
    await client.close()
  })
})
