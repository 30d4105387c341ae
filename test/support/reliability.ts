/** Helpers for the reliability tests: stored-log reads, a model tap, a seeded PRNG. */
import { EventEmitter } from 'node:events'
import type { ChatModel, ModelEvent } from '../../src/llm/types.js'
import { storedEvents, type Frame, type RunningApp } from './app.js'

/** Waits until the writer has stored everything accepted so far, then returns the session's log. */
export async function flushedEvents (server: RunningApp, sessionId: string): Promise<Frame[]> {
  if (!(await server.app.services.writer.flush(10_000))) throw new Error('event writer did not flush within 10 s')
  return storedEvents(server, sessionId)
}

/** The seqs are exactly 1..n. */
export function isDense (events: Frame[]): boolean {
  return events.every((e, i) => e.seq === i + 1)
}

/** A ChatModel that passes everything through and emits each stream event ('event', ModelEvent) as it goes by, text given to the sink included. */
export function tapModel (inner: ChatModel): { model: ChatModel; events: EventEmitter; texts: () => number } {
  const events = new EventEmitter()
  let texts = 0
  const model: ChatModel = {
    info: inner.info,
    complete: (req) => inner.complete(req),
    async * stream (req) {
      const seen = (event: ModelEvent) => {
        if (event.type === 'text') texts++
        events.emit('event', event)
      }
      // Text may bypass the events through the consumer's sink (the hot path): tap it there too.
      const { onText } = req
      const tapped = onText ? { ...req, onText: (text: string) => { seen({ type: 'text', text }); onText(text) } } : req
      for await (const event of inner.stream(tapped) as AsyncIterable<ModelEvent>) {
        seen(event)
        yield event
      }
    }
  }
  return { model, events, texts: () => texts }
}

/** Resolves once the tapped model has streamed `n` text events in all. */
export function textsReach (tap: { events: EventEmitter; texts: () => number }, n: number, timeoutMs = 10_000): Promise<void> {
  if (tap.texts() >= n) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { tap.events.off('event', on); reject(new Error(`model streamed ${tap.texts()} texts, not ${n}`)) }, timeoutMs)
    const on = () => { if (tap.texts() >= n) { clearTimeout(timer); tap.events.off('event', on); resolve() } }
    tap.events.on('event', on)
  })
}

/** mulberry32: a small seeded PRNG so a failing random run can be replayed with its seed. */
export function seededRandom (seed: number): { next: () => number; int: (min: number, max: number) => number; pick: <T>(xs: readonly T[]) => T } {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  return { next, int, pick: (xs) => xs[int(0, xs.length - 1)] }
}

/** Concatenates a turn's deltas by index; throws on a gap or on two copies of an index with different text. */
export function deltaText (frames: Frame[], turnId: string): string {
  const byIndex = new Map<number, string>()
  for (const f of frames) {
    if (f.type !== 'delta' || f.turnId !== turnId) continue
    const prev = byIndex.get(f.index)
    if (prev !== undefined && prev !== f.text) throw new Error(`turn ${turnId}: delta ${f.index} differs between copies`)
    byIndex.set(f.index, f.text)
  }
  const max = Math.max(-1, ...byIndex.keys())
  const parts: string[] = []
  for (let i = 0; i <= max; i++) {
    const text = byIndex.get(i)
    if (text === undefined) throw new Error(`turn ${turnId}: delta index ${i} missing (max ${max})`)
    parts.push(text)
  }
  return parts.join('')
}
