/**
 * Heap per ended session in the memory store: N sessions of two 8,000-character messages and two lifecycle
 * events, each ended, then the heap after GC. `node --expose-gc --import tsx bench/store-heap.ts [memory.ts path] [N]`
 * — the path lets the same run measure the store of another revision (e.g. `git archive <rev> src | tar -x -C /tmp/base`).
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const modulePath = resolve(process.argv[2] ?? 'src/store/memory.ts')
const sessions = Number(process.argv[3] ?? 2000)
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with node --expose-gc')

const { createMemoryStore } = await import(pathToFileURL(modulePath).href) as typeof import('../src/store/memory.js')
// The server's defaults (MEMORY_MAX_SESSIONS, MEMORY_SESSION_TTL_MS); a store of a revision before them ignores the options.
const store = createMemoryStore({ maxEndedSessions: 1_000, endedTtlMs: 86_400_000 } as Parameters<typeof createMemoryStore>[0])
gc(); gc()
const before = process.memoryUsage().heapUsed
const text = (i: number, tag: string) => `${tag}${i} `.padEnd(8000, 'x')
// Recent times: the TTL must not be what forgets them.
const t0 = Date.now() - sessions * 1000 - 60_000
for (let i = 0; i < sessions; i++) {
  const sessionId = `s${i}`
  const ts = (k: number) => new Date(t0 + i * 1000 + k).toISOString()
  await store.appendEvents([
    { sessionId, event: { type: 'connected', seq: 1, ts: ts(0), connectionId: 'c' } },
    { sessionId, event: { type: 'user_message', seq: 2, ts: ts(1), turnId: 't', content: text(i, 'u') } },
    { sessionId, event: { type: 'assistant_message', seq: 3, ts: ts(2), turnId: 't', content: text(i, 'a'), finishReason: 'stop' } },
    { sessionId, event: { type: 'disconnected', seq: 4, ts: ts(3), connectionId: 'c' } }
  ])
  await store.endSession({ sessionId, endedAt: ts(10) })
}
// A read lets a store that forgets lazily (on reads and ends) settle, as any request would.
await store.getSession('s0')
gc(); gc()
const grown = process.memoryUsage().heapUsed - before
process.stdout.write(`${JSON.stringify({ store: modulePath, sessions, heapGrownMB: +(grown / 1048576).toFixed(1), perEndedSessionKB: +(grown / sessions / 1024).toFixed(1) })}\n`)
