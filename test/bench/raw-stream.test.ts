/** relay-raw's stream reader: token text found however the upstream's writes are split into reads, and `[DONE]` ends it. */
import net from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { rawCompletion } from '../../bench/raw-stream.js'

const chunk = (text: string) => `data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"${text}"},"finish_reason":null}]}\n\n`
const ROLE = 'data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
const body = ROLE + chunk('a ') + chunk('hello ') + chunk('world ') + 'data: [DONE]\n\n'
const HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n'

const servers: net.Server[] = []
afterEach(() => { for (const s of servers.splice(0)) s.close() })

/** An upstream that writes the response in the given pieces, each in its own read (3 ms between writes), and never closes. */
async function upstream (pieces: string[]): Promise<{ url: URL, requests: string[] }> {
  const requests: string[] = []
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    socket.once('data', async (req) => {
      requests.push(String(req))
      for (const p of pieces) {
        socket.write(p)
        await new Promise((resolve) => setTimeout(resolve, 3))
      }
    })
    socket.on('error', () => {})
  })
  servers.push(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`), requests }
}

async function read (pieces: string[]) {
  const up = await upstream(pieces)
  const got: string[] = []
  const ended = await new Promise<Error | undefined>((resolve) => {
    rawCompletion({ url: up.url, body: '{"stream":true}', onPiece: (p) => got.push(p), onEnd: resolve })
    setTimeout(() => resolve(new Error('not ended within 3 s')), 3_000)
  })
  return { got, ended, request: up.requests[0] }
}

describe('raw-stream (relay-raw)', () => {
  it('posts the request and reads each event once, in order, when every event is its own read', async () => {
    const { got, ended, request } = await read([HEAD, ROLE, chunk('a '), chunk('hello '), chunk('world '), 'data: [DONE]\n\n'])
    expect(ended).toBeUndefined()
    expect(got).toEqual(['a ', 'hello ', 'world '])
    expect(request).toMatch(/^POST \/v1\/chat\/completions HTTP\/1\.1\r\n[^]*content-length: 15\r\n\r\n\{"stream":true\}$/)
  })

  it('loses nothing when reads cut the marker, the text and the [DONE] line, down to single characters', async () => {
    const split = await read([HEAD + body.slice(0, 200), ...body.slice(200).match(/[^]{1,7}/g)!])
    expect(split.ended).toBeUndefined()
    expect(split.got.join('')).toBe('a hello world ')
    const bytes = await read([HEAD, ROLE, ...chunk('a ').split(''), 'data: [DO', 'N', 'E]\n\n'])
    expect(bytes.ended).toBeUndefined()
    expect(bytes.got).toEqual(['a '])
  })
})
