/** Entry point: dotenv → loadConfig → buildApp → listen → graceful shutdown. The only file that touches `process`. */
import 'dotenv/config'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { LOG_SAFETY } from './logger.js'
import { StoreError } from './store/types.js'
import { ClusterUnavailable, InstanceIdInUse } from './cluster/errors.js'

function readConfig (): Config {
  try {
    return loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
}

/** Builds the app; a store that cannot be reached or has no schema stops the server with one line naming what to check. */
async function build (config: Config): Promise<FastifyInstance> {
  try {
    return await buildApp({
      config,
      logger: {
        level: config.LOG_LEVEL,
        ...LOG_SAFETY,
        ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } } : {})
      }
    })
  } catch (err) {
    if (err instanceof StoreError) {
      const where = config.STORAGE === 'supabase' ? 'SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY' : 'DATABASE_URL'
      process.stderr.write(`Could not start: STORAGE=${config.STORAGE}: ${err.message} (check ${where})\n`)
      process.exit(1)
    }
    if (err instanceof ClusterUnavailable) {
      process.stderr.write(`Could not start: cluster mode: ${err.message} (check ${err instanceof InstanceIdInUse ? 'INSTANCE_ID' : 'REDIS_URL'})\n`)
      process.exit(1)
    }
    throw err
  }
}

const config = readConfig()
const app = await build(config)

let stopping = false
async function shutdown (signal: string): Promise<void> {
  if (stopping) {
    app.log.warn({ signal }, 'already draining: signal ignored (the drain is bounded by DRAIN_TIMEOUT_MS and SHUTDOWN_TIMEOUT_MS)')
    return
  }
  stopping = true
  // First, before anything closes: a load balancer polling /health/ready stops routing here.
  app.services.readiness.drain()
  app.services.hub.stopAccepting()
  app.log.info({ signal, delayMs: config.SHUTDOWN_DELAY_MS }, 'draining: /health/ready answers 503')
  const timer = setTimeout(() => {
    app.log.error('shutdown timed out; exiting')
    process.exit(1)
  }, Math.min(2 ** 31 - 1, config.SHUTDOWN_DELAY_MS + config.DRAIN_TIMEOUT_MS + config.SHUTDOWN_TIMEOUT_MS + 5_000))
  timer.unref()
  try {
    if (config.SHUTDOWN_DELAY_MS > 0) await new Promise((resolve) => setTimeout(resolve, config.SHUTDOWN_DELAY_MS))
    app.log.info({ signal }, 'shutting down: closing turns as interrupted, sockets with 1012, flushing writes')
    await app.close()
    process.exit(0)
  } catch (err) {
    app.log.error({ err }, 'shutdown failed')
    process.exit(1)
  }
}
// A supervisor may repeat SIGTERM: a second one must not kill the drain (and lose what it had not stored yet).
// A second Ctrl-C (SIGINT) still stops the process at once.
process.on('SIGTERM', () => { void shutdown('SIGTERM') })
process.once('SIGINT', () => { void shutdown('SIGINT') })
process.on('unhandledRejection', (err) => { app.log.error({ err }, 'unhandled rejection') })

try {
  const address = await app.listen({ host: config.HOST, port: config.PORT })
  const { model, store } = app.services
  if (config.AUTH_DISABLED) app.log.warn(`AUTH_DISABLED=true: anyone who can reach ${address} can read every session and spend the model key`)
  app.log.info({
    address,
    auth: app.services.auth.enabled,
    model: model.info,
    store: store.kind
  }, `listening on ${address} — model ${model.info.provider}/${model.info.name}${model.info.offline ? ' (offline model: set OPENAI_API_KEY for a real one)' : ''}, store ${store.kind}`)
} catch (err) {
  app.log.error({ err }, 'could not start')
  process.exit(1)
}
