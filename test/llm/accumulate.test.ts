/** The chunk reducer: text deltas, tool calls keyed by index, empty-choices and usage chunks, purity. */
import { describe, expect, it } from 'vitest'
import { accumulateChunk, completedToolCalls, emptyAccumulator, type ChunkLike, type StreamAccumulator } from '../../src/llm/accumulate.js'
import { emptyChoicesChunk, textChunks, toolCallChunks, usageChunk } from '../support/fake-openai.js'

function fold (chunks: unknown[]): { state: StreamAccumulator; texts: string[] } {
  let state = emptyAccumulator()
  const texts: string[] = []
  for (const c of chunks) {
    const step = accumulateChunk(state, c as ChunkLike)
    state = step.state
    if (step.text) texts.push(step.text)
  }
  return { state, texts }
}

describe('accumulateChunk', () => {
  it('reads reasoning under both names, apart from the text; reasoning_content wins when both come', () => {
    const step = (delta: Record<string, unknown>) => accumulateChunk(emptyAccumulator(), { choices: [{ index: 0, delta }] } as ChunkLike)
    expect(step({ reasoning_content: 'hmm ' })).toMatchObject({ text: '', reasoning: 'hmm ' })
    expect(step({ reasoning: 'so ', content: null })).toMatchObject({ text: '', reasoning: 'so ' })
    expect(step({ reasoning_content: 'a', reasoning: 'b', content: 'c' })).toMatchObject({ text: 'c', reasoning: 'a' })
    expect(step({ reasoning_content: null, reasoning: 'b' })).toMatchObject({ reasoning: 'b' })
    expect(step({ content: 'plain' })).toMatchObject({ text: 'plain', reasoning: '' })
    expect(step({ reasoning: 42 }).reasoning).toBe('')
    const { state } = fold([...['x', 'yz'].map((r) => ({ choices: [{ index: 0, delta: { reasoning: r } }] })), ...textChunks('ok')])
    expect(state).toMatchObject({ reasoningChars: 3, text: 'ok' })
  })

  it('yields text deltas in order and the finish reason', () => {
    const { state, texts } = fold(textChunks('Hello big world'))
    expect(texts).toEqual(['Hello ', 'big ', 'world'])
    expect(state.text).toBe('Hello big world')
    expect(state.finishReason).toBe('stop')
    expect(state.chunks).toBe(5)
    expect(completedToolCalls(state)).toEqual([])
  })

  it('tolerates choices: [] chunks, content: null and collects usage', () => {
    const { state, texts } = fold([
      emptyChoicesChunk(),
      { choices: [{ index: 0, delta: { role: 'assistant', content: null }, finish_reason: null }] },
      { choices: [{ index: 0, delta: { content: 'ok' }, finish_reason: 'stop' }] },
      usageChunk({ prompt: 3, completion: 1 }),
      { choices: null },
      {}
    ])
    expect(texts).toEqual(['ok'])
    expect(state.usage).toEqual({ promptTokens: 3, completionTokens: 1, totalTokens: 4 })
    expect(state.finishReason).toBe('stop')
  })

  it('assembles interleaved tool-call fragments by index', () => {
    const { state } = fold([
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 1, id: 'b', function: { name: 'beta', arguments: '' } }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'a', function: { name: 'alpha', arguments: '{"x"' } }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 1, function: { arguments: '{"y":' } }, { index: 0, function: { arguments: ':1}' } }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 1, function: { name: 'beta', arguments: '2}' } }] }, finish_reason: 'tool_calls' }] }
    ])
    expect(completedToolCalls(state)).toEqual([
      { id: 'a', name: 'alpha', arguments: '{"x":1}' },
      { id: 'b', name: 'beta', arguments: '{"y":2}' }
    ])
    expect(state.finishReason).toBe('tool_calls')
  })

  it('matches what toolCallChunks produces, and gives an id to a call sent without one', () => {
    const args = '{"userId":"alice","n":[1,2,3]}'
    const { state } = fold(toolCallChunks([{ id: 'call_9', name: 'fetch_user_profile', args }], { splitArgsInto: 5 }))
    expect(completedToolCalls(state)).toEqual([{ id: 'call_9', name: 'fetch_user_profile', arguments: args }])
    const anon = fold([{ choices: [{ delta: { tool_calls: [{ index: 0, function: { name: 'f', arguments: '{}' } }] }, finish_reason: 'tool_calls' }] }])
    expect(completedToolCalls(anon.state)).toEqual([{ id: 'call_0', name: 'f', arguments: '{}' }])
  })

  it('is pure: earlier states are not changed by later chunks', () => {
    const s0 = emptyAccumulator()
    const s1 = accumulateChunk(s0, { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'a', function: { name: 'f', arguments: '{' } }] } }] }).state
    const s2 = accumulateChunk(s1, { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '}' } }] } }] }).state
    expect(s0.toolCalls).toEqual([])
    expect(s1.toolCalls[0].arguments).toBe('{')
    expect(s2.toolCalls[0].arguments).toBe('{}')
  })
})

describe('tool calls from servers that omit index', () => {
  const frag = (f: Record<string, unknown>) => ({ choices: [{ delta: { tool_calls: [f] } }] })

  it('a fragment with a new id starts a new call; fragments without an id continue the last one', () => {
    const { state } = fold([
      frag({ id: 'a', function: { name: 'alpha', arguments: '{"x"' } }),
      frag({ function: { arguments: ':1}' } }),
      frag({ id: 'b', function: { name: 'beta', arguments: '{}' } }),
      frag({ id: 'b', function: { arguments: '' } })
    ])
    expect(completedToolCalls(state)).toEqual([
      { id: 'a', name: 'alpha', arguments: '{"x":1}' },
      { id: 'b', name: 'beta', arguments: '{}' }
    ])
    expect(state.toolCalls.map((c) => c.index)).toEqual([0, 1])
  })

  it('a first fragment with neither index nor id starts call 0', () => {
    const { state } = fold([frag({ function: { name: 'f', arguments: '{' } }), frag({ function: { arguments: '}' } })])
    expect(completedToolCalls(state)).toEqual([{ id: 'call_0', name: 'f', arguments: '{}' }])
  })
})

describe('tool-call fragments', () => {
  it('a fragment without arguments (or with null) adds nothing; the first name wins over a repeated one', () => {
    const { state } = fold([
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'a', function: { name: 'first' } }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'second', arguments: null } }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: null }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: null, function: { arguments: '{}' } }] } }] }
    ])
    expect(completedToolCalls(state)).toEqual([{ id: 'a', name: 'first', arguments: '{}' }])
  })

  it('an empty or null tool_calls list changes nothing and keeps the same list', () => {
    const s1 = accumulateChunk(emptyAccumulator(), { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'a', function: { name: 'f', arguments: '{}' } }] } }] }).state
    for (const tool_calls of [[], null]) {
      const s2 = accumulateChunk(s1, { choices: [{ index: 0, delta: { tool_calls } }] } as ChunkLike).state
      expect(s2.toolCalls).toBe(s1.toolCalls)
    }
  })

  it('reads only choice 0, wherever it is in the list; a choice without index counts as 0', () => {
    const step = accumulateChunk(emptyAccumulator(), { choices: [{ index: 1, delta: { content: 'other' }, finish_reason: 'length' }, { index: 0, delta: { content: 'mine' } }] })
    expect(step.text).toBe('mine')
    expect(step.state.finishReason).toBeNull()
    expect(accumulateChunk(emptyAccumulator(), { choices: [{ delta: { content: 'x' }, finish_reason: 'stop' }] }).state).toMatchObject({ text: 'x', finishReason: 'stop' })
    // A null choice (a broken proxy) reads as an empty one instead of failing the stream.
    const withNull = { choices: [null, { index: 1, delta: { content: 'y' } }] } as unknown as ChunkLike
    expect(accumulateChunk(emptyAccumulator(), withNull)).toMatchObject({ text: '', state: { chunks: 1, text: '' } })
  })

  it('keeps the last finish reason and usage when later chunks carry none; fills totals that are missing', () => {
    const { state } = fold([
      { choices: [{ index: 0, delta: { content: 'a' }, finish_reason: 'stop' }], usage: { prompt_tokens: 2 } },
      { choices: [{ index: 0, delta: {} }] }
    ])
    expect(state).toMatchObject({ finishReason: 'stop', usage: { promptTokens: 2, completionTokens: 0, totalTokens: 2 } })
    expect(fold([{ usage: { completion_tokens: 5, total_tokens: 9 } }]).state.usage).toEqual({ promptTokens: 0, completionTokens: 5, totalTokens: 9 })
    expect(fold([{ usage: { prompt_tokens: 7, completion_tokens: 3 } }]).state.usage).toEqual({ promptTokens: 7, completionTokens: 3, totalTokens: 10 })
  })

  it('orders completed calls by index, not by arrival', () => {
    const { state } = fold([
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 2, id: 'c', function: { name: 'z', arguments: '{}' } }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'a', function: { name: 'x', arguments: '{}' } }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 1, function: { name: 'y', arguments: '{}' } }] } }] }
    ])
    expect(completedToolCalls(state).map((c) => c.id)).toEqual(['a', 'call_1', 'c'])
  })
})
