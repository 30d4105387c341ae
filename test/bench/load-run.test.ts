/** The load generator notices lost, duplicated and mangled tokens, and the token codec survives coalesced or split deltas. */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { runLoad } from '../../bench/load-run.js'
import { createTokenSplitter, decodeToken, encodeToken, nowMs } from '../../bench/token-codec.js'
import { startUpstream } from '../../bench/upstream.js'

type Fault = 'none' | 'drop' | 'duplicate' | 'coalesce'

/** A relay that can drop token 2's delta, send token 4's delta twice, or coalesce pairs of tokens into one delta. */
async function faultyRelay (upstreamUrl: string, fault: Fault) {
  const client = new OpenAI({ apiKey: 'k', baseURL: `${upstreamUrl}/v1`, maxRetries: 0 })
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(wss, 'listening')
  wss.on('connection', (ws, req) => {
    ws.send(JSON.stringify({ type: 'session', sessionId: req.url }))
    ws.on('message', (data) => {
      const { content } = JSON.parse(String(data)) as { content: string }
      void (async () => {
        ws.send(JSON.stringify({ type: 'user_message', seq: 1, turnId: 't1', content }))
        const pieces: string[] = []
        for await (const chunk of await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content }], stream: true })) {
          const text = chunk.choices[0]?.delta?.content
          if (text) pieces.push(text)
        }
        let index = 0
        const send = (text: string) => ws.send(JSON.stringify({ type: 'delta', turnId: 't1', index: index++, text }))
        pieces.forEach((text, i) => {
          if (fault === 'drop' && i === 2) { index++; return }
          if (fault === 'coalesce') { if (i % 2 === 1) send(pieces[i - 1] + text); else if (i === pieces.length - 1) send(text); return }
          send(text)
          if (fault === 'duplicate' && i === 4) ws.send(JSON.stringify({ type: 'delta', turnId: 't1', index: index - 1, text }))
        })
        ws.send(JSON.stringify({ type: 'assistant_message', seq: 2, turnId: 't1', content: pieces.join(''), finishReason: 'stop' }))
      })()
    })
  })
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, close: () => new Promise((resolve) => wss.close(resolve)) }
}

let upstream: Awaited<ReturnType<typeof startUpstream>>
beforeAll(async () => { upstream = await startUpstream({ tokens: 7, rate: 1000, ttftMs: 5 }) })
afterAll(async () => { await upstream.close() })

const load = async (fault: Fault) => {
  const relay = await faultyRelay(`http://127.0.0.1:${upstream.port}`, fault)
  try {
    return await runLoad({
      url: relay.url, sessions: 2, turns: 2, tokens: 7, thinkMs: 0, rampPerSec: 1000, staggerMs: 5,
      prefix: `t-${fault}`, serverPid: process.pid, upstreamPid: process.pid, timeoutMs: 10_000
    })
  } finally {
    await relay.close()
  }
}

describe('load generator checks', () => {
  it('counts every token once through a correct relay, coalesced deltas included', async () => {
    for (const fault of ['none', 'coalesce'] as const) {
      const r = await load(fault)
      expect(r.tokens).toEqual({ expected: 28, received: 28, lost: 0, duplicated: 0, outOfOrder: 0, garbage: 0 })
      expect(r.turns).toEqual({ expected: 4, done: 4, contentMismatch: 0 })
      expect(r.latencyMs.count).toBe(28)
      expect(r.ttftMs.count).toBe(4)
    }
  })

  it('reports a dropped delta as a lost token and a content mismatch', async () => {
    const r = await load('drop')
    expect(r.tokens.lost).toBe(4)
    expect(r.tokens.received).toBe(24)
    expect(r.turns.contentMismatch).toBe(4)
  })

  it('reports a repeated delta as duplicated', async () => {
    const r = await load('duplicate')
    expect(r.tokens.duplicated).toBe(8) // the repeated index, and its token seen again, per turn
    expect(r.tokens.lost).toBe(0)
  })
})

describe('token codec', () => {
  it('round-trips sequence numbers and emit times to the microsecond, across the wrap', () => {
    const emitMs = nowMs() - 12.3456
    const d = decodeToken(encodeToken({ seq: 1234, emitMs }).trim(), emitMs + 12.3456)!
    expect(d.seq).toBe(1234)
    expect(Math.abs(d.emitMs - emitMs)).toBeLessThan(0.002)
    const wrapUs = 36 ** 7
    const onEdge = (Math.ceil((emitMs * 1000) / wrapUs) * wrapUs) / 1000 - 0.5 // 0.5 ms before a wrap
    const e = decodeToken(encodeToken({ seq: 0, emitMs: onEdge, arrivalMs: onEdge - 3 }).trim(), onEdge + 2)!
    expect(Math.abs(e.emitMs - onEdge)).toBeLessThan(0.002)
    expect(Math.abs(e.arrivalMs! - (onEdge - 3))).toBeLessThan(0.002)
    expect(decodeToken('hello', nowMs())).toBeUndefined()
  })

  it('splits tokens however the text is cut into deltas', () => {
    const text = [0, 1, 2, 3].map((seq) => encodeToken({ seq, emitMs: 1000 + seq })).join('')
    const split = createTokenSplitter()
    const got = [text.slice(0, 3), text.slice(3, 20), text.slice(20)].flatMap(split)
    expect(got.map((t) => decodeToken(t, 2000)?.seq)).toEqual([0, 1, 2, 3])
  })
})
