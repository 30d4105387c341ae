/** Host and Origin policy: loopback and HOST by default (no DNS rebinding), ALLOWED_ORIGINS when set, '*' for anyone. */
import { describe, expect, it } from 'vitest'
import { testConfig } from '../../src/config.js'
import { createHostPolicy } from '../../src/routes/origin.js'
import { startApp } from '../support/app.js'

describe('host policy', () => {
  it('by default serves loopback names and HOST only, whatever the Host header claims', () => {
    const p = createHostPolicy(testConfig())
    for (const host of ['127.0.0.1:8001', 'localhost:8001', '[::1]:8001', 'localhost']) expect(p.hostAllowed(host)).toBe(true)
    for (const host of ['rebind.attacker.example:8001', '10.0.0.5:8001', '', undefined]) expect(p.hostAllowed(host)).toBe(false)
    expect(p.originAllowed(undefined)).toBe(true)
    expect(p.originAllowed('http://127.0.0.1:8001')).toBe(true)
    expect(p.originAllowed('http://localhost:5173')).toBe(true)
    expect(p.originAllowed('http://rebind.attacker.example:8001')).toBe(false)
    expect(p.originAllowed('null')).toBe(false)
    expect(createHostPolicy(testConfig({ HOST: 'chat.internal', AUTH_DISABLED: 'true' })).hostAllowed('chat.internal:8001')).toBe(true)
    expect(createHostPolicy(testConfig({ HOST: '0.0.0.0', AUTH_DISABLED: 'true' })).hostAllowed('0.0.0.0:8001')).toBe(false)
  })

  it('with ALLOWED_ORIGINS: exactly those origins, and their host names', () => {
    const p = createHostPolicy(testConfig({ ALLOWED_ORIGINS: 'https://chat.example.com' }))
    expect(p.originAllowed('https://chat.example.com')).toBe(true)
    expect(p.originAllowed('http://chat.example.com')).toBe(false)
    expect(p.originAllowed('http://localhost:8001')).toBe(false)
    expect(p.hostAllowed('chat.example.com')).toBe(true)
    expect(p.hostAllowed('localhost:8001')).toBe(true)
    const any = createHostPolicy(testConfig({ ALLOWED_ORIGINS: '*' }))
    expect(any.originAllowed('https://anything.example')).toBe(true)
    expect(any.hostAllowed('anything.example')).toBe(true)
  })

  it('refuses a request for a foreign Host with 403 before any route runs', async () => {
    const server = await startApp()
    try {
      const res = await server.app.inject({ url: '/api/sessions', headers: { host: 'rebind.attacker.example:8001' } })
      expect(res.statusCode).toBe(403)
      expect(res.json().error.code).toBe('HOST_NOT_ALLOWED')
      // The refusal carries the same security headers as every other answer.
      expect(res.headers['content-security-policy']).toContain("default-src 'self'")
      expect(res.headers['x-content-type-options']).toBe('nosniff')
      expect((await server.app.inject({ url: '/health', headers: { host: '127.0.0.1:8001' } })).statusCode).toBe(200)
    } finally {
      await server.close()
    }
  })
})
