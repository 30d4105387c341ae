/** The servers under test: the baseline relay (and its lean-fetch variant) and the app (memory, and Postgres when configured). */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { authEnv } from './auth-issuer.js'
import { ROOT, freePort, spawnNode, tsEntry, waitForHealth, type Child } from './procs.js'

/**
 * relay: the floor (ws + openai SDK). relay-lean: the relay on the app's transport (src/llm/lean-fetch.ts and the
 * SSE decoder) with its sends batched per loop turn — the app's design with nothing else (no store, checks or logs).
 * relay-raw: a measuring stick, not a server — the upstream read through raw-stream.ts (no HTTP parser, SSE decoder or
 * JSON.parse), each read's text sent as one frame with the same batched sends: about the least a Node server that reads
 * each token from its own HTTP/1.1 stream and sends it as it arrives can cost. app: the app on the memory store. app-auth: the
 * same app and env with authentication on — ES256 JWTs checked against a JWKS served by the bench process (auth-issuer.ts),
 * every session signed in as its own user. app-nometrics: the app with METRICS=off (no prom-client, nothing counted), so one
 * run shows what metrics cost per token (the app itself runs with METRICS on, the default). app-pg: the app on Postgres (DATABASE_URL, schema applied);
 * Postgres is another process, so its CPU counts as "other CPU" (raise --max-other if it triggers re-runs).
 * app-otel: the app with tracing on, exporting spans over OTLP/HTTP to a receiver the bench process runs (otlp-receiver.ts),
 * so one run shows what tracing costs per turn. app-base: the app as it was at `--base-rev` (base-app.ts), extracted into a
 * temporary directory and started from source through tsx with the same env: the previous app, in the same run.
 */
export type TargetName = 'relay' | 'relay-lean' | 'relay-raw' | 'app' | 'app-auth' | 'app-nometrics' | 'app-pg' | 'app-otel' | 'app-base'
export const ALL_TARGETS: TargetName[] = ['relay', 'relay-lean', 'relay-raw', 'app', 'app-auth', 'app-nometrics', 'app-pg', 'app-otel', 'app-base']

export interface RunningServer {
  child: Child
  port: number
  url: string
  readyMs: number
}

/** App settings for a benchmark: limits out of the way, summaries off (their upstream calls would land inside later windows). */
export const appEnv = (upstreamUrl: string): Record<string, string> => ({
  LOG_LEVEL: 'warn',
  STORAGE: 'memory',
  LLM_PROVIDER: 'openai',
  OPENAI_API_KEY: 'bench',
  OPENAI_BASE_URL: `${upstreamUrl}/v1`,
  LLM_MAX_RETRIES: '0',
  RATE_MESSAGES_PER_MIN: '1000000',
  RATE_FRAMES_PER_MIN: '1000000',
  MAX_SOCKETS_PER_SESSION: '1000',
  // Per-user limits (in force with auth on; every bench session is its own user anyway).
  RATE_MESSAGES_PER_MIN_PER_USER: '1000000',
  MAX_SOCKETS_PER_USER: '100000',
  // Every load generator socket comes from 127.0.0.1, and the bench measures the relay, not the admission limits.
  MAX_SOCKETS_PER_IP: '1000000',
  MAX_NEW_SESSIONS_PER_IP_PER_MIN: '1000000',
  RATE_MESSAGES_PER_MIN_PER_IP: '1000000',
  RATE_CONNECTIONS_PER_MIN_PER_IP: '1000000',
  MAX_CONCURRENT_TURNS: '1000000',
  DISCONNECT_GRACE_MS: '0',
  // setInterval caps at 2^31-1 ms; this keeps the summary worker asleep for the whole run.
  SUMMARY_POLL_MS: '2000000000'
})

export function appEntryArgs (entry: 'tsx' | 'dist'): string[] {
  if (entry === 'dist') return [join(ROOT, 'dist/server.js')]
  return tsEntry('src/server.ts')
}

export function targetAvailable (name: TargetName, entry: 'tsx' | 'dist'): string | undefined {
  if (name === 'app-pg' && !process.env.DATABASE_URL) return 'DATABASE_URL is not set'
  if (name.startsWith('app') && !existsSync(join(ROOT, entry === 'dist' ? 'dist/server.js' : 'src/server.ts'))) return 'the app entry does not exist yet'
  if (name === 'app-auth' && !existsSync(join(ROOT, 'src/auth/jwt.ts'))) return 'src/auth/jwt.ts does not exist'
  if (name === 'relay-lean' && !existsSync(join(ROOT, 'src/llm/lean-fetch.ts'))) return 'src/llm/lean-fetch.ts does not exist'
  if (name === 'app-otel' && !existsSync(join(ROOT, 'src/tracing/otel.ts'))) return 'src/tracing/otel.ts does not exist'
  return undefined
}

/** Starts a fresh server process for `name` on a free port and waits for GET /health. */
export async function startTarget ({ name, upstreamUrl, appEntry, profile, jwksUrl, otlpEndpoint, baseDir }: {
  name: TargetName, upstreamUrl: string, appEntry: 'tsx' | 'dist'
  /** Write V8 CPU profiles of the server (`--cpu-prof`, one file per thread: tsx's loader has its own) into this directory. */
  profile?: { dir: string }
  /** app-auth: the bench's JWKS issuer (AUTH_JWKS_URL). */
  jwksUrl?: string
  /** app-otel: the bench's OTLP/HTTP receiver (OTEL_EXPORTER_OTLP_ENDPOINT). */
  otlpEndpoint?: string
  /** app-base: the extracted tree of the base revision (always run from source through tsx). */
  baseDir?: string
}): Promise<RunningServer> {
  if (name === 'app-auth' && jwksUrl === undefined) throw new Error('app-auth needs the bench JWKS issuer')
  if (name === 'app-otel' && otlpEndpoint === undefined) throw new Error('app-otel needs the bench OTLP receiver')
  if (name === 'app-base' && baseDir === undefined) throw new Error('app-base needs the base revision extracted')
  const port = await freePort()
  const prof = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile.dir}`] : []
  const common = { HOST: '127.0.0.1', PORT: String(port) }
  const child = name.startsWith('relay')
    ? spawnNode({
      label: name,
      args: [...prof, ...tsEntry('bench/relay.ts')],
      env: { ...common, OPENAI_BASE_URL: `${upstreamUrl}/v1`, OPENAI_API_KEY: 'bench', ...(name === 'relay-lean' ? { RELAY_FETCH: 'lean' } : name === 'relay-raw' ? { RELAY_FETCH: 'raw' } : {}) }
    })
    : spawnNode({
      label: name,
      ...(name === 'app-base' ? { cwd: baseDir, args: [...prof, ...tsEntry('src/server.ts')] } : { args: [...prof, ...appEntryArgs(appEntry)] }),
      env: {
        ...common,
        ...appEnv(upstreamUrl),
        ...(name === 'app-pg' ? { STORAGE: 'postgres', DATABASE_URL: process.env.DATABASE_URL ?? '' } : {}),
        ...(name === 'app-auth' ? authEnv(jwksUrl!) : {}),
        ...(name === 'app-nometrics' ? { METRICS: 'off' } : {}),
        ...(name === 'app-otel' ? { OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint!, OTEL_SERVICE_NAME: 'rtb-bench' } : {})
      }
    })
  const url = `http://127.0.0.1:${port}`
  const readyMs = await waitForHealth({ child, url: `${url}/health`, timeoutMs: 30_000 })
  return { child, port, url, readyMs }
}
