/** Serves the chat page: public/ at `/` and the browser builds it loads from /vendor/. */
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

/**
 * The repo root: two levels up from this file both as src/routes/page.ts (tsx, vitest) and as
 * dist/routes/page.js (compiled). Walks further up only if the layout ever changes.
 */
function findRepoRoot (): string {
  const here = dirname(fileURLToPath(import.meta.url))
  let dir = resolve(here, '..', '..')
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'public', 'index.html'))) return dir
    dir = resolve(dir, '..')
  }
  return resolve(here, '..', '..')
}

const root = findRepoRoot()

/**
 * URL → file in node_modules. Only these files are exposed, never the whole folder. supabase.js is a
 * classic script (it defines `window.supabase`); the page loads it only when Supabase Auth is configured.
 */
const vendor = [
  { url: '/vendor/marked.js', file: join(root, 'node_modules', 'marked', 'lib', 'marked.esm.js') },
  { url: '/vendor/purify.js', file: join(root, 'node_modules', 'dompurify', 'dist', 'purify.es.mjs') },
  { url: '/vendor/supabase.js', file: join(root, 'node_modules', '@supabase', 'supabase-js', 'dist', 'umd', 'supabase.js') }
]

export default async function pageRoutes (app: FastifyInstance): Promise<void> {
  const publicDir = join(root, 'public')
  for (const { file } of vendor) {
    if (!existsSync(file)) throw new Error(`page: vendor module missing at ${file} (run npm install)`)
  }

  await app.register(fastifyStatic, {
    root: publicDir,
    prefix: '/',
    index: ['index.html'],
    // The page is not fingerprinted: the browser must revalidate so a deploy is seen on reload.
    cacheControl: false,
    setHeaders: (reply) => { reply.header('cache-control', 'no-cache') }
  })

  for (const { url, file } of vendor) {
    app.get(url, { schema: { hide: true } }, (_req, reply) => {
      // Scripts must come with a JavaScript MIME type (.mjs is not known everywhere).
      reply.type('text/javascript; charset=utf-8')
      return reply.sendFile(file.slice(dirname(file).length + 1), dirname(file))
    })
  }
}
