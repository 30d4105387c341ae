/** The key per-address limits count a client under: an IPv4 address, or an IPv6 client's /64 network. */
import { isIPv6 } from 'node:net'

/**
 * An IPv6 host usually holds a whole /64 and can send from any address in it, so limits keyed on the full
 * address are walked around by rotating through it (as @fastify/rate-limit already groups REST clients by /64).
 * IPv4-mapped addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports) count as the IPv4 address.
 */
export function addressKey (ip: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip)
  if (mapped) return mapped[1]
  if (!isIPv6(ip)) return ip
  const [head, tail] = ip.toLowerCase().split('::')
  const front = head === '' ? [] : head.split(':')
  // No '::' (tail undefined) or one at the end (tail ''): nothing after the zeros.
  // Stryker disable next-line ArrayDeclaration: one group more after the zeros never reaches the first four
  const back = tail ? tail.split(':') : []
  const groups = [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back]
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`
}
