/** A peer's sends over a real socket: batched per loop turn, still one message per frame, in order, before the close. */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import { createPeer, type Peer } from '../../src/chat/peer.js'

let wss: WebSocketServer | undefined
afterEach(async () => {
  for (const c of wss?.clients ?? []) c.terminate()
  await new Promise((resolve) => wss?.close(resolve))
})

/** A server whose first connection becomes a Peer, and a client recording what it receives. */
async function connect (maxBufferedBytes = 1 << 20, { corked = true } = {}): Promise<{ peer: Peer; received: string[]; client: WebSocket; server: () => Duplex }> {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(wss, 'listening')
  let tcp: Duplex | undefined
  const accepted = new Promise<Peer>((resolve) => {
    wss!.once('connection', (socket, req) => {
      tcp = req.socket
      resolve(createPeer(socket, { maxBufferedBytes, ...(corked ? { stream: req.socket } : {}) }))
    })
  })
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`)
  const received: string[] = []
  client.on('message', (data) => received.push(String(data)))
  await once(client, 'open')
  return { peer: await accepted, received, client, server: () => tcp! }
}

const until = async (check: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe('peer', () => {
  it.each([true, false])('frames of one loop turn leave together but arrive as separate messages, in order, across sizes and scripts (corked: %s)', async (corked) => {
    const { peer, received } = await connect(1 << 20, { corked })
    const frames = ['', 'a', 'ü'.repeat(62), 'x'.repeat(126), '世界'.repeat(30_000), 'y'.repeat(70_000), '🚀 last']
    for (const f of frames) peer.sendRaw(f)
    peer.send({ type: 'pong' })
    expect(received).toEqual([])
    await until(() => received.length === frames.length + 1)
    expect(received).toEqual([...frames, '{"type":"pong"}'])
  })

  it('frames sent in later turns follow the earlier ones', async () => {
    const { peer, received } = await connect()
    for (let turn = 0; turn < 20; turn++) {
      peer.sendRaw(`t${turn}a`)
      peer.sendRaw(`t${turn}b`)
      await new Promise((resolve) => setImmediate(resolve))
    }
    await until(() => received.length === 40)
    expect(received).toEqual(Array.from({ length: 20 }, (_, t) => [`t${t}a`, `t${t}b`]).flat())
  })

  it('close sends what is queued first, then the close frame; nothing is sent after it', async () => {
    const { peer, received, client } = await connect()
    peer.sendRaw('one')
    peer.sendRaw('two')
    peer.close(4001, 'bye')
    peer.sendRaw('after')
    expect(peer.open).toBe(false)
    const [code, reason] = await once(client, 'close') as [number, Buffer]
    expect(code).toBe(4001)
    expect(String(reason)).toBe('bye')
    expect(received).toEqual(['one', 'two'])
  })

  it('a client that stops reading is closed with 4408 once its send buffer passes the bound', async () => {
    const { peer, client } = await connect(64 * 1024)
    client.pause()
    const closed = once(client, 'close')
    const chunk = 'z'.repeat(16 * 1024)
    for (let i = 0; i < 10_000 && peer.open; i++) {
      peer.sendRaw(chunk)
      if (i % 8 === 7) await new Promise((resolve) => setImmediate(resolve))
    }
    expect(peer.open).toBe(false)
    client.resume()
    const [code] = await closed as [number]
    expect(code).toBe(4408)
  })

  it('a batch bigger than the bound (a long replay to a client that does not read) is cut at the bound, not buffered whole', async () => {
    const bound = 256 * 1024
    const { peer, client, server } = await connect(bound)
    client.pause()
    const closed = once(client, 'close')
    const frame = 'r'.repeat(16 * 1024)
    // 48 MB in one loop turn: far more than the kernel's socket buffers take.
    for (let i = 0; i < 3_000; i++) peer.sendRaw(frame)
    await new Promise((resolve) => setImmediate(resolve))
    expect(peer.open).toBe(false)
    // What the process holds for this socket: the bound, plus at most one corked chunk (64 KB) and a frame.
    expect(server().writableLength).toBeLessThan(bound + 64 * 1024 + 2 * frame.length)
    client.resume()
    expect((await closed as [number])[0]).toBe(4408)
  })
  it('onClose: called once when the socket closes, at once when it has closed, never after being cancelled', async () => {
    const { peer, client } = await connect()
    const calls: string[] = []
    peer.onClose(() => calls.push('first'))
    const cancel = peer.onClose(() => calls.push('cancelled'))
    cancel()
    client.close()
    await until(() => calls.length > 0)
    await until(() => !peer.open)
    peer.onClose(() => calls.push('late'))
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(calls).toEqual(['first', 'late'])
  })
})
