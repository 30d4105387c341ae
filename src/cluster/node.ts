/**
 * Cluster mode's traffic between instances (DESIGN §11). A socket may reach any instance; the session's owner
 * (the lease holder) runs it. On the socket's instance a link forwards the socket's frames to the owner and the
 * owner's frames back; on the owner a RemotePeer stands for the socket, so the session broadcasts, replays and
 * refuses exactly as for its own sockets, in the same seq order. Instances with links between them exchange
 * heartbeats: a silent or restarted instance's links are dropped (its sockets told to reconnect, its remote
 * sockets detached). The bus going down drops every link; sessions go on on their owners.
 */
import { randomUUID } from 'node:crypto'
import type { SessionFrame, SessionHandle } from '../chat/dispatch.js'
import type { Peer } from '../chat/peer.js'
import type { Logger } from '../logger.js'
import type { Meter } from '../metrics/meter.js'
import { CloseCode } from '../protocol.js'
import type { ClusterBus } from './bus.js'
import { createOutbox } from './outbox.js'
import { createRemotePeer, type RemotePeer } from './remote-peer.js'
import { decode, decodeClose, encode, type AttachRequest, type Kind, type Message } from './wire.js'

/** What the owner side needs of the hub. */
export interface OwnerPort {
  /** Joins a socket of another instance to a session live here; null when refused (the peer was told and closed). */
  attachRemote (opts: { sessionId: string; after?: number; peer: Peer; principal?: string }): Promise<SessionHandle | null>
}

/** `unanswered`: the holder said nothing in time (dead, or cut off); `down`: the bus is down. */
export type RemoteAttach = SessionHandle | null | 'unanswered' | 'down'

export interface ClusterNode {
  readonly instanceId: string
  readonly up: boolean
  /** Sockets here forwarded to other owners, sockets of other instances served here, messages published so far. */
  readonly links: { forwarded: number; served: number; published: number }
  /** Forwards a socket to the session's owner `holder`; resolves once the owner answered (or did not in time). */
  attach (opts: { sessionId: string; after?: number; peer: Peer; principal?: string; holder: string }): Promise<RemoteAttach>
  /** Closes every socket here linked to another owner (1012), telling each owner: the start of a drain. */
  leave (why: string): void
  /** Starts serving other instances' sockets. */
  serve (owner: OwnerPort): void
  /** Drops every link and stops the heartbeats (the bus is closed by whoever opened it). */
  stop (): void
}

interface Forwarded { owner: string; peer: Peer; answered: () => void }
interface Served { from: string; peer: RemotePeer; ready: Promise<SessionHandle | null>; chain: Promise<void> }

export function createClusterNode ({ bus, instanceId, heartbeatMs, logger, meter }: {
  bus: ClusterBus
  instanceId: string
  /** Heartbeats between linked instances; one silent for three of these is taken for gone. */
  heartbeatMs: number
  logger: Logger
  meter?: Meter
}): ClusterNode {
  /**
   * This process's run, renewed whenever the bus goes down: links dropped here then are dropped by the other side too
   * (a new run reads as a restart), even where heartbeats never went silent (a brief, one-sided Redis reset).
   */
  let run = randomUUID().slice(0, 8)
  const forwarded = new Map<string, Forwarded>()
  const served = new Map<string, Served>()
  /** Per linked instance: its run (a change means it restarted) and when it was last heard. */
  const contacts = new Map<string, { run: string | null; heard: number }>()
  let owner: OwnerPort | null = null

  let published = 0
  const outbox = createOutbox((to, body) => send(to, 'o', '-', body))
  const send = (to: string, kind: Kind, link: string, body = ''): boolean => {
    published++
    return bus.publish(to, encode(kind, instanceId, run, link, body))
  }

  const touch = (instance: string, runOf: string | null): void => {
    const contact = contacts.get(instance)
    if (contact && contact.run !== null && runOf !== null && contact.run !== runOf) drop(instance, 'restarted')
    const known = contacts.get(instance)
    contacts.set(instance, { run: runOf ?? known?.run ?? null, heard: Date.now() })
  }

  /** Drops every link with `instance` (or all of them): sockets here reconnect, sockets there are detached. */
  const drop = (instance: string | null, why: string): void => {
    for (const [id, link] of forwarded) {
      if (instance !== null && link.owner !== instance) continue
      forwarded.delete(id)
      link.peer.close(CloseCode.restarting, `the session's server ${why}; reconnect`)
      link.answered()
    }
    for (const [id, entry] of served) {
      if (instance !== null && entry.from !== instance) continue
      served.delete(id)
      entry.peer.gone()
      void entry.ready.then((handle) => handle?.detach(entry.peer, `its server ${why}`))
    }
    if (instance === null) contacts.clear()
    else contacts.delete(instance)
  }

  const onAttach = (m: Message): void => {
    let request: AttachRequest
    try {
      request = JSON.parse(m.body) as AttachRequest
    } catch {
      request = null as unknown as AttachRequest
    }
    if (typeof request !== 'object' || request === null || typeof request.sessionId !== 'string' || typeof request.connectionId !== 'string') {
      logger.warn({ from: m.from }, 'cluster: unreadable attach request')
      return
    }
    // Alive and on it: the session may take a while to load (a long log), which is not silence.
    send(m.from, 'k', m.link)
    const log = logger.child({ sessionId: request.sessionId, connectionId: request.connectionId, principal: request.principal ?? null, via: m.from })
    const peer = createRemotePeer({
      send: (frame) => { outbox.push(m.from, m.link, frame) },
      close: (code, reason) => { outbox.flush(); return send(m.from, 'c', m.link, `${code} ${reason}`) },
      via: m.from,
      connectionId: request.connectionId,
      ...(request.address === undefined ? {} : { address: request.address }),
      log,
      ...(meter?.enabled ? { meter } : {})
    })
    // Served before the owner answers: a refusal closes the peer at once (before attachRemote returns), and that
    // close must find the entry to take it out, else it stays for as long as the other instance lives.
    const entry: Served = { from: m.from, peer, ready: Promise.resolve(null), chain: Promise.resolve() }
    served.set(m.link, entry)
    // Closed otherwise than by a drop or a 'd' (those take the entry out first): by the session, or by a flush the bus
    // refused. The session lets the socket go too, or a stand-in nobody reads would hold it live for good.
    peer.onClose(() => {
      if (served.get(m.link) !== entry) return
      served.delete(m.link)
      void entry.ready.then((handle) => handle?.detach(peer, 'its server cannot be reached'))
    })
    entry.ready = owner
      ? owner.attachRemote({ sessionId: request.sessionId, peer, ...(request.after === undefined ? {} : { after: request.after }), ...(request.principal === undefined ? {} : { principal: request.principal }) })
        .catch((err: unknown) => { log.error({ err }, 'cluster: attach failed'); peer.close(CloseCode.internal, 'internal error'); return null })
      : Promise.resolve(null)
    if (!owner) peer.close(CloseCode.tryAgainLater, 'server starting')
    entry.chain = entry.ready.then(() => {})
    void entry.ready.then((handle) => { if (handle) log.info({ after: request.after }, 'socket connected through another instance') })
  }

  const onFrame = (m: Message): void => {
    const entry = served.get(m.link)
    if (!entry) { send(m.from, 'c', m.link, `${CloseCode.restarting} the session moved; reconnect`); return }
    entry.chain = entry.chain.then(async () => {
      const handle = await entry.ready
      if (!handle || !entry.peer.open) return
      // Parsed and checked against the protocol by the socket's instance.
      await handle.handle(entry.peer, JSON.parse(m.body) as SessionFrame)
    }).catch((err: unknown) => {
      entry.peer.log?.error({ err }, 'frame handling failed')
      entry.peer.send({ type: 'error', code: 'internal_error', message: 'internal error while handling the frame', retryable: true })
    })
  }

  const onLeft = (m: Message): void => {
    const entry = served.get(m.link)
    if (!entry) return
    served.delete(m.link)
    entry.peer.gone()
    void entry.ready.then((handle) => handle?.detach(entry.peer, m.body.slice(0, 120) || 'socket closed'))
  }

  const onOut = (m: Message): void => {
    let gone: Set<string> | undefined
    for (const line of m.body.split('\n')) {
      const tab = line.indexOf('\t')
      const id = line.slice(0, tab)
      const link = tab > 0 ? forwarded.get(id) : undefined
      if (link) {
        link.answered()
        link.peer.sendRaw(line.slice(tab + 1))
      } else if (tab > 0 && !(gone ??= new Set()).has(id)) {
        // A link dropped here (its owner went silent, the bus down) before the owner's answer came: the owner is told
        // the socket left, or its stand-in would hold the session live for as long as the two instances are linked.
        gone.add(id)
        send(m.from, 'd', id, 'socket gone')
      }
    }
  }

  const onClosed = (m: Message): void => {
    const link = forwarded.get(m.link)
    if (!link) return
    forwarded.delete(m.link)
    const { code, reason } = decodeClose(m.body)
    link.peer.close(code, reason)
    link.answered()
  }

  bus.onMessage((raw) => {
    const m = decode(raw)
    if (!m || m.from === instanceId) return
    touch(m.from, m.run)
    switch (m.kind) {
      case 'a': onAttach(m); break
      case 'f': onFrame(m); break
      case 'd': onLeft(m); break
      case 'k': forwarded.get(m.link)?.answered(); break
      case 'o': onOut(m); break
      case 'c': onClosed(m); break
      case 'h': break
    }
  })
  bus.onState((up) => {
    if (up) return
    drop(null, 'lost its link to this one (Redis down)')
    run = randomUUID().slice(0, 8)
  })

  const timer = setInterval(() => {
    const now = Date.now()
    const linked = new Set<string>()
    for (const link of forwarded.values()) linked.add(link.owner)
    for (const entry of served.values()) linked.add(entry.from)
    for (const instance of linked) {
      const contact = contacts.get(instance)
      if (contact && now - contact.heard > 3 * heartbeatMs) {
        logger.warn({ silent: instance }, 'cluster: an instance stopped answering; dropping its links')
        drop(instance, 'stopped answering')
        continue
      }
      send(instance, 'h', '-')
    }
    for (const instance of contacts.keys()) if (!linked.has(instance)) contacts.delete(instance)
  }, heartbeatMs)
  timer.unref()

  return {
    instanceId,
    get up () { return bus.up },
    get links () { return { forwarded: forwarded.size, served: served.size, published } },
    serve (port) { owner = port },
    leave (why) {
      for (const [id, link] of forwarded) {
        forwarded.delete(id)
        send(link.owner, 'd', id, why)
        link.peer.close(CloseCode.restarting, `${why}; reconnect`)
        link.answered()
      }
    },
    async attach ({ sessionId, after, peer, principal, holder }) {
      if (!bus.up) return 'down'
      const id = randomUUID()
      let answered!: () => void
      const answer = new Promise<'answered'>((resolve) => { answered = () => resolve('answered') })
      forwarded.set(id, { owner: holder, peer, answered })
      if (!contacts.has(holder)) contacts.set(holder, { run: null, heard: Date.now() })
      const request: AttachRequest = { sessionId, connectionId: peer.connectionId, ...(after === undefined ? {} : { after }), ...(principal === undefined ? {} : { principal }), ...(peer.address === undefined ? {} : { address: peer.address }) }
      if (!send(holder, 'a', id, JSON.stringify(request))) { forwarded.delete(id); return 'down' }
      let timeout: NodeJS.Timeout | undefined
      let stopWatching = (): void => {}
      const outcome = await Promise.race([
        answer,
        new Promise<'unanswered'>((resolve) => { timeout = setTimeout(() => resolve('unanswered'), 3 * heartbeatMs) }),
        new Promise<'gone'>((resolve) => { stopWatching = peer.onClose(() => resolve('gone')) })
      ])
      clearTimeout(timeout)
      stopWatching()
      if (outcome !== 'answered' || !forwarded.has(id)) {
        if (forwarded.delete(id)) send(holder, 'd', id, outcome === 'gone' ? 'socket closed' : 'no answer in time')
        return outcome === 'unanswered' ? 'unanswered' : null
      }
      return {
        async handle (_peer, frame) {
          if (!forwarded.has(id)) return
          if (!send(holder, 'f', id, JSON.stringify(frame))) drop(holder, 'cannot be reached (Redis down)')
        },
        detach (_peer, why) {
          if (forwarded.delete(id)) send(holder, 'd', id, why)
        }
      }
    },
    stop () {
      clearInterval(timer)
      drop(null, 'is shutting down')
    }
  }
}
