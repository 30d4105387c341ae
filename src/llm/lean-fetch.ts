/** A lean transport for the openai SDK: a `fetch` on node:http with keep-alive (no WHATWG streams); its SSE decoder is sse-decoder.ts. */
import http from 'node:http'
import https from 'node:https'
import { Readable } from 'node:stream'
import zlib from 'node:zlib'

export interface LeanFetchOptions {
  /** Idle upstream connections kept open per host (default 256); concurrent requests are never capped. */
  maxFreeSockets?: number
  /** How long an idle connection is kept (ms, default 4 s: below the 5 s keep-alive of a default Node server, so the server never closes one under us). */
  freeSocketTimeoutMs?: number
}

/**
 * What the SDK reads from a response: status, headers, `text()`/`json()`, and a `body` it iterates with
 * `for await` (openai `ReadableStreamToAsyncIterable` uses a body's own `Symbol.asyncIterator` when it has one,
 * so the chunks go from the socket to the SDK's SSE decoder without a ReadableStream in between).
 */
type LeanResponse = Pick<Response, 'ok' | 'status' | 'statusText' | 'headers' | 'url' | 'redirected' | 'type' | 'text' | 'json' | 'arrayBuffer'> & {
  body: Readable
  readonly bodyUsed: boolean
}

const abortError = (signal: AbortSignal): Error => {
  const reason: unknown = signal.reason
  if (reason instanceof Error && reason.name === 'AbortError') return reason
  return new DOMException('This operation was aborted', 'AbortError')
}

function headerList (init: HeadersInit | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  if (init === undefined) return out
  if (init instanceof Headers) init.forEach((v, k) => { out[k] = v })
  else for (const [k, v] of Array.isArray(init) ? init : Object.entries(init)) out[k] = v
  return out
}

/**
 * A body read whole (`text()`, `json()`: a non-streaming completion, an error) is refused past 16 MiB — far
 * above any real answer — so a broken endpoint cannot exhaust the process's memory. Streams are read as they come.
 */
export const MAX_BUFFERED_BODY_BYTES = 16 * 1024 * 1024

function decoded (res: http.IncomingMessage): Readable {
  const enc = String(res.headers['content-encoding'] ?? '').trim().toLowerCase()
  const unzip = enc === 'gzip' || enc === 'x-gzip' ? zlib.createGunzip() : enc === 'deflate' ? zlib.createInflate() : enc === 'br' ? zlib.createBrotliDecompress() : undefined
  if (!unzip) return res
  res.on('error', (err) => unzip.destroy(err))
  return res.pipe(unzip)
}

function toResponse (res: http.IncomingMessage, url: string): LeanResponse {
  const headers = new Headers()
  const raw = res.rawHeaders
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i], raw[i + 1])
  const body = decoded(res)
  let used = false
  const bytes = async (): Promise<Buffer> => {
    if (used) throw new TypeError('Body is unusable: Body has already been read')
    used = true
    const parts: Buffer[] = []
    let size = 0
    for await (const part of body) {
      size += (part as Buffer).length
      if (size > MAX_BUFFERED_BODY_BYTES) {
        body.destroy()
        throw new TypeError(`response body over ${MAX_BUFFERED_BODY_BYTES} bytes`)
      }
      parts.push(part as Buffer)
    }
    return Buffer.concat(parts)
  }
  const status = res.statusCode ?? 0
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText: res.statusMessage ?? '',
    headers,
    url,
    redirected: false,
    type: 'basic',
    body,
    get bodyUsed () { return used },
    text: async () => (await bytes()).toString('utf8'),
    json: async () => JSON.parse((await bytes()).toString('utf8')) as unknown,
    arrayBuffer: async () => { const b = await bytes(); return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer }
  }
}

/** The runtime's fetch as it was when this module loaded (a process may install the lean fetch as the global one). */
const runtimeFetch = globalThis.fetch

const isPlainBody = (body: unknown): body is string | Uint8Array | ArrayBuffer | undefined | null =>
  body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer

/**
 * Builds a `fetch` for `new OpenAI({ fetch })`. Requests with a streaming or form body (uploads) and
 * anything that is not http(s) fall back to the global fetch.
 */
export function createLeanFetch (opts: LeanFetchOptions = {}): typeof fetch {
  const agentOptions = { keepAlive: true, maxFreeSockets: opts.maxFreeSockets ?? 256, timeout: opts.freeSocketTimeoutMs ?? 4_000, scheduling: 'lifo' as const }
  const agents = { 'http:': new http.Agent(agentOptions), 'https:': new https.Agent(agentOptions) }

  const leanFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input)
    const target = new URL(url)
    if (input instanceof Request || !isPlainBody(init.body) || (target.protocol !== 'http:' && target.protocol !== 'https:')) {
      return await runtimeFetch(input, init)
    }
    const signal = init.signal ?? undefined
    if (signal?.aborted) throw abortError(signal)
    const body = init.body instanceof ArrayBuffer ? new Uint8Array(init.body) : init.body ?? undefined
    const headers = headerList(init.headers)
    if (body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) {
      headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength)
    }
    const request = target.protocol === 'https:' ? https.request : http.request

    return await new Promise<Response>((resolve, reject) => {
      const req = request(target, { method: init.method ?? 'GET', headers, agent: agents[target.protocol as 'http:' | 'https:'] })
      let res: http.IncomingMessage | undefined
      const onAbort = () => {
        const err = signal ? abortError(signal) : new DOMException('This operation was aborted', 'AbortError')
        // Before the response: reject; during the body: the SDK's `for await` ends with the AbortError.
        if (res) res.destroy(err)
        req.destroy(err)
        reject(err)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      const release = () => signal?.removeEventListener('abort', onAbort)
      req.once('response', (incoming) => {
        res = incoming
        incoming.once('close', release)
        resolve(toResponse(incoming, url) as unknown as Response)
      })
      req.once('error', (err) => {
        release()
        reject(err.name === 'AbortError' ? err : new TypeError('fetch failed', { cause: err }))
      })
      req.end(body)
    })
  }
  return leanFetch as typeof fetch
}
