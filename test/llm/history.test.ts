/** Rebuilding model context from the event log: message shapes, tool steps, interrupted calls, token budget. */
import { describe, expect, it } from 'vitest'
import { buildHistory, DEFAULT_SYSTEM_PROMPT } from '../../src/llm/history.js'
import type { StoredEvent } from '../../src/protocol.js'

let seq = 0
const ts = '2026-01-01T00:00:00.000Z'
const ev = <T extends Omit<StoredEvent, 'seq' | 'ts'>>(e: T): StoredEvent => ({ ...e, seq: ++seq, ts } as unknown as StoredEvent)
const userMsg = (turnId: string, content: string) => ev({ type: 'user_message', turnId, content })
const answer = (turnId: string, content: string, finishReason = 'stop') => ev({ type: 'assistant_message', turnId, content, finishReason })
const call = (turnId: string, callId: string, name: string, args: unknown) => ev({ type: 'tool_call', turnId, callId, name, arguments: args })
const result = (turnId: string, callId: string, name: string, ok: boolean, value: unknown) =>
  ev({ type: 'tool_result', turnId, callId, name, ok, ...(ok ? { result: value } : { error: value }), durationMs: 1 })

describe('buildHistory', () => {
  it('maps messages, tool steps and results; skips lifecycle, error and empty assistant events', () => {
    const events = [
      ev({ type: 'connected', connectionId: 'c1' }),
      userMsg('t1', 'Hi'),
      answer('t1', 'Hello!'),
      userMsg('t2', 'CPU and alice?'),
      call('t2', 'a', 'get_system_metrics', {}),
      call('t2', 'b', 'fetch_user_profile', { userId: 'alice' }),
      result('t2', 'b', 'fetch_user_profile', false, 'No user with id "alice"'),
      result('t2', 'a', 'get_system_metrics', true, { cpu: 3 }),
      call('t2', 'c', 'fetch_user_profile', 'not json'),
      result('t2', 'c', 'fetch_user_profile', true, null),
      answer('t2', 'CPU is 3 %.'),
      ev({ type: 'error', code: 'llm_error', message: 'x', retryable: true, turnId: 't3' }),
      userMsg('t3', 'again'),
      answer('t3', '', 'error'),
      ev({ type: 'disconnected', connectionId: 'c1' }),
      userMsg('t4', 'latest')
    ]
    expect(buildHistory({ events, tokenBudget: 10_000, systemPrompt: 'SYS' })).toEqual([
      { role: 'system', content: 'SYS' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'CPU and alice?' },
      { role: 'assistant', content: null, tool_calls: [
        { id: 'a', type: 'function', function: { name: 'get_system_metrics', arguments: '{}' } },
        { id: 'b', type: 'function', function: { name: 'fetch_user_profile', arguments: '{"userId":"alice"}' } }
      ] },
      { role: 'tool', tool_call_id: 'a', content: '{"cpu":3}' },
      { role: 'tool', tool_call_id: 'b', content: 'Error: No user with id "alice"' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'fetch_user_profile', arguments: 'not json' } }] },
      { role: 'tool', tool_call_id: 'c', content: 'null' },
      { role: 'assistant', content: 'CPU is 3 %.' },
      { role: 'user', content: 'again' },
      { role: 'user', content: 'latest' }
    ])
  })

  it('gives a call without a result an "interrupted" tool message, so the history stays valid', () => {
    const events = [userMsg('t1', 'go'), call('t1', 'x', 'get_system_metrics', {}), answer('t1', '', 'interrupted'), userMsg('t2', 'next')]
    const msgs = buildHistory({ events, tokenBudget: 10_000 })
    expect(msgs[0]).toEqual({ role: 'system', content: DEFAULT_SYSTEM_PROMPT })
    expect(msgs.slice(1)).toEqual([
      { role: 'user', content: 'go' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'x', type: 'function', function: { name: 'get_system_metrics', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'x', content: 'Error: no result (interrupted)' },
      { role: 'user', content: 'next' }
    ])
  })

  it('drops whole oldest turns to fit the budget, keeping the system prompt and the latest user message', () => {
    const big = 'x'.repeat(400) // ~100 tokens
    const events = [
      userMsg('t1', `one ${big}`), answer('t1', big),
      userMsg('t2', `two ${big}`), call('t2', 'k', 'get_system_metrics', {}), result('t2', 'k', 'get_system_metrics', true, { big }), answer('t2', big),
      userMsg('t3', `three ${big}`), answer('t3', big),
      userMsg('t4', 'four')
    ]
    const all = buildHistory({ events, tokenBudget: 100_000, systemPrompt: 'S' })
    expect(all.filter((m) => m.role === 'user')).toHaveLength(4)

    const trimmed = buildHistory({ events, tokenBudget: 250, systemPrompt: 'S' })
    expect(trimmed[0]).toEqual({ role: 'system', content: 'S' })
    expect(trimmed.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user'])
    expect(trimmed[1].content).toMatch(/^three /)
    expect(trimmed.at(-1)).toEqual({ role: 'user', content: 'four' })

    const tiny = buildHistory({ events: [...events.slice(0, 2), userMsg('t9', big.repeat(10))], tokenBudget: 100, systemPrompt: 'S' })
    expect(tiny).toEqual([{ role: 'system', content: 'S' }, { role: 'user', content: big.repeat(10) }])
  })

  it('returns only the system prompt for an empty log, and nothing for an empty prompt', () => {
    expect(buildHistory({ events: [], tokenBudget: 100 })).toEqual([{ role: 'system', content: DEFAULT_SYSTEM_PROMPT }])
    expect(buildHistory({ events: [userMsg('t', 'hi')], tokenBudget: 100, systemPrompt: '' })).toEqual([{ role: 'user', content: 'hi' }])
    expect(DEFAULT_SYSTEM_PROMPT).toMatch(/realtime chat/)
  })
})
