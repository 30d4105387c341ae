/**
 * Per-address socket limit behind a trusted proxy: an IPv6 client counts by its /64 (rotating through it walks nothing),
 * an IPv4-mapped address as its IPv4 address. Regression for b6bc582 (one /64 got 20 of 20 sockets under a limit of 2).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually, startApp, TestClient, type RunningApp } from '../support/app.js'
import { fate } from '../support/fate.js'

let server: RunningApp
let n = 0
const newId = () => `v6-${process.pid}-${n++}`
const open: TestClient[] = []

beforeAll(async () => {
  server = await startApp({ env: { TRUST_PROXY: '127.0.0.1', MAX_SOCKETS_PER_IP: '2', DISCONNECT_GRACE_MS: '600000' } })
})
afterAll(async () => {
  await Promise.all(open.map((c) => c.close()))
  await server?.close()
})

/** A socket from 127.0.0.1 (the trusted proxy) forwarding for `client`. */
async function via (client: string): Promise<TestClient> {
  const c = await TestClient.connect(server.wsUrl(newId()), { localAddress: '127.0.0.1', headers: { 'x-forwarded-for': client } })
  open.push(c)
  return c
}
const JOINED = { joined: true }
const TOO_MANY = { closed: 1013, frames: [expect.objectContaining({ type: 'error', code: 'too_many_sockets' })] }

describe('MAX_SOCKETS_PER_IP by client network', () => {
  it('three addresses of one IPv6 /64 are one client: the third is refused too_many_sockets + 1013; another /64 is accepted', async () => {
    const a = await via('2001:db8:1:2::a')
    expect(await fate(a)).toMatchObject(JOINED)
    const b = await via('2001:db8:1:2::b')
    expect(await fate(b)).toMatchObject(JOINED)
    expect(await fate(await via('2001:db8:1:2::c'))).toEqual(TOO_MANY)
    // The same /64 written out in full is the same client too.
    expect(await fate(await via('2001:0db8:0001:0002:0000:0000:0000:00ff'))).toEqual(TOO_MANY)

    // The neighbouring /64 is another client with its own count.
    const other = await via('2001:db8:1:3::1')
    expect(await fate(other)).toMatchObject(JOINED)
    expect(other.ofType('error')).toEqual([])

    // Freeing a place in the /64 lets one more address of it in, and only one.
    await a.close()
    // b and other remain (the refused ones gave their places back at once).
    await eventually(() => server.app.services.serverSockets.held('') === 2)
    const e = await via('2001:db8:1:2::e')
    expect(await fate(e)).toMatchObject(JOINED)
    expect(await fate(await via('2001:db8:1:2::f'))).toEqual(TOO_MANY)
    expect([b, other, e].map((x) => x.open)).toEqual([true, true, true])
  })

  it('::ffff:10.0.0.7 and 10.0.0.7 count as one address', async () => {
    const mapped = await via('::ffff:10.0.0.7')
    expect(await fate(mapped)).toMatchObject(JOINED)
    const plain = await via('10.0.0.7')
    expect(await fate(plain)).toMatchObject(JOINED)
    expect(server.app.services.addressSockets.held('10.0.0.7')).toBe(2)
    expect(server.app.services.addressSockets.held('::ffff:10.0.0.7')).toBe(0)
    for (const spelling of ['::ffff:10.0.0.7', '10.0.0.7', '::FFFF:10.0.0.7']) {
      expect(await fate(await via(spelling)), spelling).toEqual(TOO_MANY)
    }
    // Another IPv4 address is untouched.
    const neighbour = await via('10.0.0.8')
    expect(await fate(neighbour)).toMatchObject(JOINED)
    expect([mapped, plain, neighbour].map((x) => x.open)).toEqual([true, true, true])
  })
})
