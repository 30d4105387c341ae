/** loadConfig: embedded defaults, .env.example as shipped, one clear line per bad value. */
import { readFileSync } from 'node:fs'
import { parse } from 'dotenv'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config.js'

describe('loadConfig', () => {
  it('gives the embedded defaults with no environment', () => {
    const c = loadConfig({})
    expect(c).toMatchObject({
      HOST: '127.0.0.1', PORT: 8001, LLM_PROVIDER: 'offline', LLM_MODEL: 'gpt-4o-mini', STORAGE: 'memory',
      MAX_MESSAGE_BYTES: 65_536, MAX_MESSAGE_CHARS: 8_000, DISCONNECT_GRACE_MS: 10_000, RATE_MESSAGES_PER_MIN: 30,
      RATE_FRAMES_PER_MIN: 600, MAX_SOCKETS_PER_SESSION: 8, trustedProxies: [], allowedOrigins: [],
      MAX_SOCKETS_PER_IP: 64, MAX_NEW_SESSIONS_PER_IP_PER_MIN: 30, RATE_MESSAGES_PER_MIN_PER_IP: 60, MAX_SOCKETS: 10_000,
      MAX_LIVE_SESSIONS: 5_000, MAX_CONCURRENT_TURNS: 256, MAX_QUEUED_TURNS: 1_024, MEMORY_MAX_SESSIONS: 1_000
    })
    expect(c.LLM_TEMPERATURE).toBeUndefined()
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('accepts .env.example exactly as shipped, with the same result as no environment', () => {
    const example = parse(readFileSync(new URL('../.env.example', import.meta.url)))
    expect(Object.keys(example).length).toBeGreaterThan(40)
    // INSTANCE_ID defaults to a fresh random name per start: equal in shape, not in value.
    const { INSTANCE_ID: a, ...fromExample } = loadConfig(example)
    const { INSTANCE_ID: b, ...fromNothing } = loadConfig({})
    expect(fromExample).toEqual(fromNothing)
    expect(a).toMatch(/^i-[0-9a-f]{12}$/)
    expect(b).toMatch(/^i-[0-9a-f]{12}$/)
    expect(a).not.toBe(b)
  })

  it('reads INSTANCE_ID and SESSION_LEASE_MS, and names a bad one', () => {
    expect(loadConfig({ INSTANCE_ID: 'api-1', SESSION_LEASE_MS: '2500' })).toMatchObject({ INSTANCE_ID: 'api-1', SESSION_LEASE_MS: 2500 })
    expect(() => loadConfig({ INSTANCE_ID: 'has space' })).toThrow(/INSTANCE_ID/)
    expect(() => loadConfig({ SESSION_LEASE_MS: '10' })).toThrow(/SESSION_LEASE_MS/)
  })

  it('reads REDIS_URL and DRAIN_TIMEOUT_MS: cluster mode needs a shared store, a URL that is not redis is named', () => {
    const pgEnv = { STORAGE: 'postgres', DATABASE_URL: 'postgres://x@127.0.0.1/db' }
    expect(loadConfig({ ...pgEnv, REDIS_URL: 'rediss://:pw@cache:6380/2', DRAIN_TIMEOUT_MS: '5000' })).toMatchObject({ REDIS_URL: 'rediss://:pw@cache:6380/2', DRAIN_TIMEOUT_MS: 5000 })
    expect(loadConfig({}).DRAIN_TIMEOUT_MS).toBe(30_000)
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' })).toThrow(/REDIS_URL: cluster mode needs a shared store: set STORAGE=postgres or STORAGE=supabase/)
    expect(() => loadConfig({ ...pgEnv, REDIS_URL: 'http://cache:6379' })).toThrow(/REDIS_URL: a redis:\/\/ or rediss:\/\/ URL/)
    expect(() => loadConfig({ DRAIN_TIMEOUT_MS: '-1' })).toThrow(/DRAIN_TIMEOUT_MS/)
  })

  it('picks openai when a key is set, and reads the service-role key from SUPABASE_KEY too', () => {
    expect(loadConfig({ OPENAI_API_KEY: 'sk-x' }).LLM_PROVIDER).toBe('openai')
    expect(loadConfig({ OPENAI_API_KEY: 'sk-x', LLM_PROVIDER: 'offline' }).LLM_PROVIDER).toBe('offline')
    const c = loadConfig({ STORAGE: 'supabase', SUPABASE_URL: 'https://x.supabase.co', SUPABASE_KEY: 'service' })
    expect(c.SUPABASE_SERVICE_ROLE_KEY).toBe('service')
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustedProxies).toEqual([])
    expect(loadConfig({ TRUST_PROXY: '10.0.0.2, 10.1.0.0/16,fd00::/8' }).trustedProxies).toEqual(['10.0.0.2', '10.1.0.0/16', 'fd00::/8'])
    expect(loadConfig({ ALLOWED_ORIGINS: 'https://a.example, https://b.example' }).allowedOrigins).toEqual(['https://a.example', 'https://b.example'])
    expect(loadConfig({ ALLOWED_ORIGINS: '*' }).allowedOrigins).toEqual(['*'])
    expect(loadConfig({ ALLOWED_ORIGINS: 'http://localhost:3000/' }).allowedOrigins).toEqual(['http://localhost:3000/'])
    expect(loadConfig({ DISCONNECT_GRACE_MS: '2147483647' }).DISCONNECT_GRACE_MS).toBe(2_147_483_647)
  })

  it.each([
    [{ PORT: '70000' }, /PORT/],
    [{ PORT: 'eighty' }, /PORT/],
    [{ STORAGE: 'mongo' }, /STORAGE/],
    [{ LLM_TEMPERATURE: '3' }, /LLM_TEMPERATURE/],
    [{ TRUST_PROXY: 'maybe' }, /TRUST_PROXY: "maybe" is not an address or CIDR/],
    [{ TRUST_PROXY: 'true' }, /TRUST_PROXY: true would trust X-Forwarded-For from any client; list the proxies/],
    [{ TRUST_PROXY: '10.0.0.0/33' }, /TRUST_PROXY/],
    [{ OFFLINE_FAULT: 'explode' }, /OFFLINE_FAULT: expected none, fail/],
    [{ STORAGE: 'postgres' }, /DATABASE_URL: required when STORAGE=postgres/],
    [{ STORAGE: 'supabase', SUPABASE_URL: 'https://x.supabase.co' }, /SUPABASE_SERVICE_ROLE_KEY/],
    [{ LLM_PROVIDER: 'openai' }, /OPENAI_API_KEY/],
    [{ OPENAI_BASE_URL: 'not a url' }, /OPENAI_BASE_URL/],
    // A host without a scheme parses as a URL with the scheme "localhost:": refused, not sent anywhere.
    [{ OPENAI_BASE_URL: 'localhost:11434/v1' }, /OPENAI_BASE_URL: expected an http:\/\/ or https:\/\/ URL/],
    [{ SUPABASE_URL: 'ftp://x.supabase.co' }, /SUPABASE_URL: expected an http/],
    // Past 2^31−1 ms Node fires a timer at once: a huge grace or heartbeat would end sockets instead of waiting.
    [{ DISCONNECT_GRACE_MS: '2147483648' }, /DISCONNECT_GRACE_MS: at most 2147483647 ms/],
    [{ HEARTBEAT_MS: '99999999999' }, /HEARTBEAT_MS: at most 2147483647 ms/],
    [{ LLM_TIMEOUT_MS: '3000000000' }, /LLM_TIMEOUT_MS: at most 2147483647 ms/],
    [{ SUMMARY_POLL_MS: '1e10' }, /SUMMARY_POLL_MS: at most 2147483647 ms/],
    [{ ALLOWED_ORIGINS: 'chat.example.com' }, /ALLOWED_ORIGINS: not an origin: chat\.example\.com/],
    [{ ALLOWED_ORIGINS: 'https://ok.example, localhost:3000' }, /ALLOWED_ORIGINS: not an origin: localhost:3000 \(/],
    [{ ALLOWED_ORIGINS: 'https://chat.example.com/app' }, /ALLOWED_ORIGINS: not an origin/],
    // URL accepts `*` in a host, but origins match exactly: a wildcard would silently allow nothing.
    [{ ALLOWED_ORIGINS: 'https://*.example.com' }, /ALLOWED_ORIGINS: not an origin: https:\/\/\*\.example\.com/],
    // server.ts gives up 5 s after SHUTDOWN_TIMEOUT_MS: that sum must stay a valid timer too.
    [{ SHUTDOWN_TIMEOUT_MS: '2147483647' }, /SHUTDOWN_TIMEOUT_MS/],
    [{ OFFLINE_FAULT: 'slow:99999999999' }, /OFFLINE_FAULT: slow:<ms> is at most 2147483647 ms/]
  ])('refuses %o with one line naming the variable', (env, pattern) => {
    let error: unknown
    try { loadConfig(env) } catch (err) { error = err }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as Error).message).toMatch(pattern)
    expect((error as Error).message).not.toContain('\n')
  })

  it('refuses a REDIS_URL Redis could not use, without repeating its password', () => {
    const base = { STORAGE: 'postgres', DATABASE_URL: 'postgres://x@127.0.0.1/db' }
    expect(loadConfig({ ...base, REDIS_URL: 'redis://:pw@cache.internal:6380/2' }).REDIS_URL).toBe('redis://:pw@cache.internal:6380/2')
    expect(loadConfig({ ...base, REDIS_URL: 'rediss://cache.internal' }).REDIS_URL).toBe('rediss://cache.internal')
    // ioredis threw on the first (a stack trace holding the URL) and sent SELECT abc for the second.
    for (const bad of ['redis://:s3cret-pw@127.0.0.1:99999', 'redis://127.0.0.1:6379/abc', 'http://127.0.0.1:6379', 'redis://']) {
      let message = ''
      try { loadConfig({ ...base, REDIS_URL: bad }) } catch (err) { message = (err as Error).message }
      expect(message, bad).toMatch(/REDIS_URL/)
      expect(message).not.toContain('s3cret-pw')
    }
  })
})
