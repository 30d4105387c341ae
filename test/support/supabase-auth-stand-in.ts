/**
 * A stand-in for Supabase Auth (GoTrue) on 127.0.0.1:0: the endpoints supabase-js 2.109 calls from the page, answered
 * as GoTrue answers them (API version 2024-01-01 errors, CORS for another origin), with ES256 access tokens and a JWKS.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair, jwtVerify, type CryptoKey, type JWK } from 'jose'

export interface StandInUser {
  id: string
  email: string
  password: string
  /** Lifetime of this user's access tokens in seconds (supabase-js refreshes 90 s before expiry). */
  expiresIn: number
}

export interface RecordedRequest {
  method: string
  /** Path under /auth/v1, e.g. `/token`. */
  path: string
  query: Record<string, string>
  headers: IncomingMessage['headers']
  body: any
}

export interface SupabaseAuthStandIn {
  /** The project URL: SUPABASE_URL. */
  readonly url: string
  /** `${url}/auth/v1/.well-known/jwks.json`: AUTH_JWKS_URL. */
  readonly jwksUrl: string
  /** The `iss` of its tokens. */
  readonly issuer: string
  /** Every request but CORS preflights, in order. */
  readonly requests: RecordedRequest[]
  /** Access tokens handed out (sign-in, magic link and refresh), in order. */
  readonly issued: string[]
  /** The link the last magic-link email to `email` would hold: GET /auth/v1/verify, which redirects to the page with the session in the fragment. */
  magicLink (email: string): string | undefined
  addUser (opts: { email: string; password: string; expiresIn?: number }): StandInUser
  /** A new signing key with a new kid; the JWKS then lists both, newest first. */
  rotateKey (): Promise<string>
  close (): Promise<void>
}

interface SigningKey { kid: string; privateKey: CryptoKey; publicKey: CryptoKey; jwk: JWK }

const API_VERSION = '2024-01-01'

async function makeKey (): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const kid = randomUUID()
  return { kid, privateKey, publicKey, jwk: { ...await exportJWK(publicKey), kid, alg: 'ES256', use: 'sig', key_ops: ['verify'] } }
}

export async function startSupabaseAuthStandIn ({ anonKey }: { anonKey: string }): Promise<SupabaseAuthStandIn> {
  const keys: SigningKey[] = [await makeKey()]
  const users = new Map<string, StandInUser>() // by email
  const refreshTokens = new Map<string, { userId: string; sessionId: string }>()
  const requests: RecordedRequest[] = []
  const links = new Map<string, { email: string; redirectTo: string }>() // one-time token → where it signs in
  const lastLink = new Map<string, string>() // email → its latest link
  const issued: string[] = []
  let url = ''
  const issuer = (): string => `${url}/auth/v1`

  const userJson = (u: StandInUser): Record<string, unknown> => ({
    id: u.id,
    aud: 'authenticated',
    role: 'authenticated',
    email: u.email,
    email_confirmed_at: '2024-01-01T00:00:00Z',
    phone: '',
    confirmed_at: '2024-01-01T00:00:00Z',
    last_sign_in_at: new Date().toISOString(),
    app_metadata: { provider: 'email', providers: ['email'] },
    user_metadata: {},
    identities: [],
    created_at: '2024-01-01T00:00:00Z',
    updated_at: new Date().toISOString(),
    is_anonymous: false
  })

  async function session (u: StandInUser, sessionId: string, method: string): Promise<Record<string, unknown>> {
    const key = keys[0]
    const now = Math.floor(Date.now() / 1000)
    const accessToken = await new SignJWT({
      email: u.email,
      phone: '',
      role: 'authenticated',
      aal: 'aal1',
      amr: [{ method, timestamp: now }],
      session_id: sessionId,
      is_anonymous: false,
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: {}
    })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
      .setIssuer(issuer())
      .setAudience('authenticated')
      .setSubject(u.id)
      .setIssuedAt(now)
      .setExpirationTime(now + u.expiresIn)
      .sign(key.privateKey)
    const refreshToken = randomBytes(12).toString('base64url')
    refreshTokens.set(refreshToken, { userId: u.id, sessionId })
    issued.push(accessToken)
    return {
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: u.expiresIn,
      expires_at: now + u.expiresIn,
      refresh_token: refreshToken,
      user: userJson(u)
    }
  }

  /** The user a bearer access token names, or null when it is not one of ours or has expired. */
  async function bearerUser (req: IncomingMessage): Promise<StandInUser | null> {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    if (!token) return null
    for (const key of keys) {
      try {
        const { payload } = await jwtVerify(token, key.publicKey, { issuer: issuer(), audience: 'authenticated' })
        return [...users.values()].find((u) => u.id === payload.sub) ?? null
      } catch {}
    }
    return null
  }

  /** GoTrue's implicit flow: the session goes to the redirect URL in its fragment, never to a server. */
  async function verify (query: Record<string, string>): Promise<[number, unknown?, Record<string, string>?]> {
    const link = links.get(query.token ?? '')
    if (!link || query.type !== 'magiclink') return [303, undefined, { location: `${query.redirect_to ?? url}#error=access_denied&error_code=otp_expired&error_description=Email+link+is+invalid+or+has+expired` }]
    links.delete(query.token)
    const s = await session(users.get(link.email)!, randomUUID(), 'otp')
    const fragment = new URLSearchParams({
      access_token: String(s.access_token),
      expires_at: String(s.expires_at),
      expires_in: String(s.expires_in),
      refresh_token: String(s.refresh_token),
      token_type: 'bearer',
      type: 'magiclink'
    })
    return [303, undefined, { location: `${link.redirectTo}#${fragment}` }]
  }

  const byId = (id: string): StandInUser | undefined => [...users.values()].find((u) => u.id === id)

  async function route (req: IncomingMessage, path: string, query: Record<string, string>, body: any): Promise<[number, unknown?, Record<string, string>?]> {
    if (req.method === 'GET' && path === '/.well-known/jwks.json') return [200, { keys: keys.map((k) => k.jwk) }]
    // The link in the email is opened by the browser itself: no apikey, and the answer is a redirect.
    if (req.method === 'GET' && path === '/verify') return verify(query)
    // Kong in front of GoTrue refuses a request without the project's key.
    if (req.headers.apikey !== anonKey) return [401, { message: 'Invalid API key' }]

    if (req.method === 'POST' && path === '/token' && query.grant_type === 'password') {
      const u = users.get(String(body?.email ?? '').toLowerCase())
      if (!u || u.password !== body?.password) return [400, { code: 'invalid_credentials', message: 'Invalid login credentials' }]
      return [200, await session(u, randomUUID(), 'password')]
    }
    if (req.method === 'POST' && path === '/token' && query.grant_type === 'refresh_token') {
      const found = refreshTokens.get(String(body?.refresh_token ?? ''))
      const u = found && byId(found.userId)
      if (!found || !u) return [400, { code: 'refresh_token_not_found', message: 'Invalid Refresh Token: Refresh Token Not Found' }]
      refreshTokens.delete(String(body.refresh_token)) // rotation: each refresh token is good once
      return [200, await session(u, found.sessionId, 'password')]
    }
    if (req.method === 'POST' && path === '/otp') {
      if (typeof body?.email !== 'string' || !body.email.includes('@')) return [400, { code: 'validation_failed', message: 'Unable to validate email address: invalid format' }]
      const email = body.email.toLowerCase()
      if (!users.has(email) && body.create_user === false) return [422, { code: 'otp_disabled', message: 'Signups not allowed for otp' }]
      if (!users.has(email)) users.set(email, { id: randomUUID(), email, password: randomBytes(16).toString('hex'), expiresIn: 3600 })
      const token = randomBytes(16).toString('hex')
      links.set(token, { email, redirectTo: query.redirect_to ?? url })
      lastLink.set(email, `${url}/auth/v1/verify?${new URLSearchParams({ token, type: 'magiclink', redirect_to: query.redirect_to ?? url })}`)
      return [200, {}]
    }
    if (req.method === 'GET' && path === '/user') {
      const u = await bearerUser(req)
      return u ? [200, userJson(u)] : [403, { code: 'bad_jwt', message: 'invalid JWT: unable to parse or verify signature' }]
    }
    if (req.method === 'POST' && path === '/logout') {
      const u = await bearerUser(req)
      if (!u) return [401, { code: 'no_authorization', message: 'This endpoint requires a valid Bearer token' }]
      for (const [token, owner] of refreshTokens) if (owner.userId === u.id) refreshTokens.delete(token)
      return [204]
    }
    return [404, { code: 'not_found', message: `no route ${req.method} ${path}` }]
  }

  function cors (req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('access-control-allow-origin', req.headers.origin ?? '*')
    res.setHeader('vary', 'Origin')
    res.setHeader('access-control-expose-headers', 'x-supabase-api-version, x-sb-error-code')
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      cors(req, res)
      if (req.method === 'OPTIONS') {
        res.setHeader('access-control-allow-methods', 'GET, POST, PUT, DELETE, OPTIONS')
        res.setHeader('access-control-allow-headers', req.headers['access-control-request-headers'] ?? '*')
        res.setHeader('access-control-max-age', '600')
        res.writeHead(204).end()
        return
      }
      const parsed = new URL(req.url ?? '/', 'http://stand-in')
      const text = Buffer.concat(chunks).toString('utf8')
      let body: any = null
      try { body = text ? JSON.parse(text) : null } catch { body = text }
      const path = parsed.pathname.replace(/^\/auth\/v1/, '')
      const query = Object.fromEntries(parsed.searchParams)
      requests.push({ method: req.method ?? 'GET', path, query, headers: req.headers, body })
      if (!parsed.pathname.startsWith('/auth/v1/')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'no route' }))
        return
      }
      route(req, path, query, body).then(([status, payload, headers = {}]) => {
        for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
        // GoTrue echoes the API version the client asked for, and shapes its errors after it.
        if (req.headers['x-supabase-api-version']) res.setHeader('x-supabase-api-version', API_VERSION)
        if (status >= 400 && (payload as any)?.code) res.setHeader('x-sb-error-code', (payload as any).code)
        if (payload === undefined) { res.writeHead(status).end(); return }
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload))
      }, (err: Error) => {
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'unexpected_failure', message: err.message }))
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    url,
    jwksUrl: `${url}/auth/v1/.well-known/jwks.json`,
    issuer: issuer(),
    requests,
    issued,
    magicLink: (email) => lastLink.get(email.toLowerCase()),
    addUser ({ email, password, expiresIn = 3600 }) {
      const user = { id: randomUUID(), email: email.toLowerCase(), password, expiresIn }
      users.set(user.email, user)
      return user
    },
    async rotateKey () {
      const key = await makeKey()
      keys.unshift(key)
      return key.kid
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}
