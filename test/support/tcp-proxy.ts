/** A node:net proxy in front of Postgres that can simulate an outage (down) and a recovery (up) on the same port. */
import net from 'node:net'
import { once } from 'node:events'

export interface TcpProxy {
  readonly port: number
  /** Destroys every live connection and stops listening: new connections are refused (ECONNREFUSED). */
  down (): Promise<void>
  /** Listens again on the same port. */
  up (): Promise<void>
  /** Stops forwarding bytes both ways (connections stay open, queries hang) until `release()`. */
  hold (): void
  release (): void
  /** Connections accepted so far (a reconnect shows up here). */
  readonly accepted: number
  close (): Promise<void>
}

export async function createTcpProxy (targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const live = new Set<net.Socket>()
  const pairs = new Set<[net.Socket, net.Socket]>()
  let held = false
  const forward = ([client, upstream]: [net.Socket, net.Socket]) => { client.pipe(upstream); upstream.pipe(client) }
  const stall = ([client, upstream]: [net.Socket, net.Socket]) => {
    client.unpipe(upstream)
    upstream.unpipe(client)
    client.pause()
    upstream.pause()
  }
  let accepted = 0
  let server: net.Server | undefined
  let port = 0

  const onConnection = (client: net.Socket) => {
    accepted++
    const upstream = net.connect({ port: targetPort, host: targetHost })
    live.add(client)
    live.add(upstream)
    const pair: [net.Socket, net.Socket] = [client, upstream]
    pairs.add(pair)
    const drop = () => { client.destroy(); upstream.destroy(); live.delete(client); live.delete(upstream); pairs.delete(pair) }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    if (held) stall(pair)
    else forward(pair)
  }

  const listen = async () => {
    const s = net.createServer(onConnection)
    s.listen({ port, host: '127.0.0.1' })
    await once(s, 'listening')
    port = (s.address() as net.AddressInfo).port
    server = s
  }

  const stop = async () => {
    const s = server
    server = undefined
    for (const socket of live) socket.destroy()
    live.clear()
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()))
  }

  await listen()
  return {
    get port () { return port },
    get accepted () { return accepted },
    down: stop,
    async up () { if (!server) await listen() },
    hold () { if (!held) { held = true; pairs.forEach(stall) } },
    release () { if (held) { held = false; pairs.forEach(forward) } },
    close: stop
  }
}

/** A port nobody listens on: bound, then released (connections to it are refused). */
export async function closedPort (): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
