/** The page route without a browser: index, modules, the vendor builds, headers, and nothing else from node_modules. */
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../../src/config.js'

describe('page route', () => {
  let app: FastifyInstance

  beforeAll(async () => {
    app = await buildApp({ config: testConfig(), logger: false })
    await app.ready()
  })
  afterAll(async () => { await app.close() })

  it('serves the page at / with a strict CSP and no inline script or handler', async () => {
    const res = await app.inject('/')
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    const csp = String(res.headers['content-security-policy'])
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain('connect-src \'self\' ws: wss:')
    expect(res.body).toContain('<script type="module" src="/app.js"></script>')
    expect(res.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/) // every script has a src
    expect(res.body).not.toMatch(/\son[a-z]+=/i) // no inline event handlers
    expect(res.body).not.toMatch(/\sstyle=/i)
  })

  it('serves the page modules and the vendor builds as JavaScript', async () => {
    for (const url of ['/app.js', '/js/chat.js', '/js/markdown.js', '/vendor/marked.js', '/vendor/purify.js']) {
      const res = await app.inject(url)
      expect(res.statusCode, url).toBe(200)
      expect(res.headers['content-type'], url).toMatch(/javascript/)
    }
    expect((await app.inject('/vendor/marked.js')).body).toMatch(/export\s*\{[^}]*\bas marked\b/)
    expect((await app.inject('/vendor/purify.js')).body).toMatch(/export \{ purify_default as default \}/)
    // supabase-js's browser build is a classic script (the page loads it only in Supabase mode): it defines window.supabase.
    const supabase = await app.inject('/vendor/supabase.js')
    expect(supabase.statusCode).toBe(200)
    expect(supabase.headers['content-type']).toMatch(/javascript/)
    expect(supabase.body).toMatch(/^var supabase=/)
    expect(supabase.body).toContain('e.createClient=')
    expect((await app.inject('/styles.css')).headers['content-type']).toMatch(/^text\/css/)
  })

  it('exposes nothing else from node_modules or the repo', async () => {
    for (const url of ['/vendor/', '/vendor/marked.esm.js', '/vendor/umd/supabase.js', '/vendor/supabase.js.map', '/node_modules/marked/package.json', '/package.json', '/../package.json', '/vendor/..%2fpackage.json']) {
      expect((await app.inject(url)).statusCode, url).toBe(404)
    }
  })
})
