/** buildApp: the one place that wires plugins, routes and services. Never listens. */
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import websocket from '@fastify/websocket'
import type { Duplex } from 'node:stream'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'
import { CloseCode } from './protocol.js'
import { LOG_SAFETY } from './logger.js'
import { addRequestLog, requestId } from './ops/request-log.js'
import services, { type ServiceDeps } from './plugins/services.js'
import { errorHandler, finiteQuery, frameworkErrorHandler, notFoundHandler } from './routes/errors.js'
import { createHostPolicy, hostGuard } from './routes/origin.js'
import authRoutes from './routes/auth.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import pageRoutes from './routes/page.js'
import sessionSocketRoutes from './routes/session-socket.js'
import sessionRoutes from './routes/sessions.js'

export interface AppOptions {
  config: Config
  /** Tests pass real instances (a store, a model pointed at a fake server); the rest is built from config. */
  deps?: ServiceDeps
  logger?: FastifyServerOptions['logger']
}

export async function buildApp ({ config, deps, logger }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // Redaction and the request serializer apply to any logger options a caller passes too (tests capture lines).
    logger: logger === undefined ? { level: config.LOG_LEVEL, ...LOG_SAFETY } : typeof logger === 'object' ? { ...LOG_SAFETY, ...logger } : logger,
    // Only the listed proxies' X-Forwarded-For is believed (request.ip); never anyone's.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    // Per-request lines only at debug: sockets and the page's polling would drown the turn logs.
    logController: new LogController({ disableRequestLogging: config.LOG_LEVEL !== 'debug' && config.LOG_LEVEL !== 'trace' }),
    genReqId: requestId,
    bodyLimit: 64 * 1024,
    frameworkErrors: frameworkErrorHandler
  })
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler(notFoundHandler)
  app.addHook('preHandler', finiteQuery)
  addRequestLog(app)

  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        // The page signs in against Supabase Auth itself when it is configured (GET /auth/config).
        connectSrc: ["'self'", 'ws:', 'wss:', ...(config.SUPABASE_URL && config.SUPABASE_ANON_KEY ? [new URL(config.SUPABASE_URL).origin] : [])],
        upgradeInsecureRequests: null
      }
    }
  })
  // After helmet's hook, so a refused host still gets the security headers.
  app.addHook('onRequest', hostGuard(createHostPolicy(config)))
  // One key space per client address across every route (request.ip: TRUST_PROXY decides whom it names);
  // probes and the WebSocket route opt out with `rateLimit: false` (sockets have their own limits).
  await app.register(rateLimit, { global: true, max: config.RATE_HTTP_PER_MIN, timeWindow: '1 minute' })
  // While closing, Fastify answers an upgrade request 503 on the raw socket and leaves it open: a client that keeps
  // it would hold the close (and the drain) until the process is killed. Ended once the answer is written.
  let closing = false
  app.server.on('upgrade', (_request: unknown, socket: Duplex) => {
    if (!closing) return
    setImmediate(() => socket.end())
    setTimeout(() => socket.destroy(), 1_000).unref()
  })
  await app.register(websocket, {
    options: { maxPayload: config.MAX_MESSAGE_BYTES },
    // Our shutdown closes sockets itself (1012): at once when draining turns (DRAIN_TIMEOUT_MS), else after turns are closed as interrupted.
    preClose: async () => {
      closing = true
      await app.services.hub.shutdown(config.DRAIN_TIMEOUT_MS)
      // Sockets not attached to a session yet (still loading, or being refused) close here too.
      for (const client of app.websocketServer.clients) {
        client.close(CloseCode.restarting, 'server restarting')
        setTimeout(() => client.terminate(), 2_000).unref() // a peer that never answers the close
      }
    }
  })
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Realtime AI Backend',
        version: '1',
        description: 'REST API. The WebSocket protocol (/ws/session/{id}) is published as JSON Schema at /protocol.json.'
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'A JWT (AUTH_JWT_SECRET / AUTH_JWKS_URL) or an API key (API_KEYS), when authentication is on' }
        }
      }
    }
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // Its own policy on /docs only: Swagger UI injects a <style> element, so styles may be inline there;
    // scripts stay 'self' as everywhere else.
    staticCSP: {
      'default-src': ["'self'"],
      'script-src': ["'self'"],
      'style-src': ["'self'", "'unsafe-inline'"],
      'img-src': ["'self'", 'data:'],
      'connect-src': ["'self'"],
      'object-src': ["'none'"],
      'base-uri': ["'self'"],
      'frame-ancestors': ["'self'"]
    }
  })
  await app.register(services, { config, deps })

  await app.register(healthRoutes)
  await app.register(metricsRoutes)
  await app.register(authRoutes)
  await app.register(sessionRoutes)
  await app.register(sessionSocketRoutes)
  await app.register(pageRoutes)
  return app
}
