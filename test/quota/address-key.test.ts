/** addressKey: what a per-address limit counts a client under. */
import { describe, expect, it } from 'vitest'
import { addressKey } from '../../src/quota/address-key.js'

describe('addressKey', () => {
  it.each<[string, string]>([
    ['127.0.0.1', '127.0.0.1'],
    ['10.1.2.3', '10.1.2.3'],
    ['::ffff:127.0.0.5', '127.0.0.5'],
    ['::FFFF:10.0.0.1', '10.0.0.1'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:0000:0000:0000:0009', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1:2:3:4', 'fe80:0:0:0::/64'],
    ['1::2:3:4:5:6', '1:0:0:2::/64'],
    ['2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['2001:db8::', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    // Mapped only when the whole address is ::ffff: and a dotted quad.
    ['::ffff:10.20.30.40', '10.20.30.40'],
    ['fe80::ffff:1.2.3.4', 'fe80:0:0:0::/64'],
    ['::ffff:10.0.0.1%eth0', '0:0:0:0::/64']
  ])('%s → %s', (ip, key) => {
    expect(addressKey(ip)).toBe(key)
  })

  it('every address of one /64 is one client; the next /64 is another', () => {
    const keys = new Set(Array.from({ length: 20 }, (_, i) => addressKey(`2001:db8:aa:bb:${i.toString(16)}::${i + 1}`)))
    expect([...keys]).toEqual(['2001:db8:aa:bb::/64'])
    expect(addressKey('2001:db8:aa:bc::1')).not.toBe(addressKey('2001:db8:aa:bb::1'))
  })
})
