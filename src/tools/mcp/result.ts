/** What an MCP server answers, mapped for the model: a tool's result or error, a usable input schema, a safe error text. */
import { clip } from '../../text.js'

interface McpContent { type: string; text?: string; [key: string]: unknown }

/**
 * A result is stored, sent to every socket of the session and read by the model: one server's 8 MB answer closed
 * every socket as too slow and rode along in every later request. Text is cut to this; other content this large fails.
 */
export const MAX_MCP_RESULT_CHARS = 100_000

const cut = (text: string): string => text.length <= MAX_MCP_RESULT_CHARS
  ? text
  : `${clip(text, MAX_MCP_RESULT_CHARS, '')}… [cut: ${text.length} characters, at most ${MAX_MCP_RESULT_CHARS}]`

/** The result the model reads: text-only content as its text, anything else as the content list (plus structured content). */
export function resultOf (res: Record<string, unknown>): { ok: true; result: unknown } | { ok: false; error: string } {
  const content = Array.isArray(res.content) ? res.content as McpContent[] : []
  const texts = content.every((c) => c.type === 'text') ? content.map((c) => String(c.text ?? '')) : undefined
  if (res.isError === true) return { ok: false, error: cut(texts ? texts.join('\n') || 'the tool reported an error' : JSON.stringify(content)) }
  const result = res.structuredContent !== undefined ? res.structuredContent : texts ? cut(texts.join('\n')) : content
  if (typeof result !== 'string') {
    // Stryker disable next-line OptionalChaining: a result from the wire (array, object, number, null) always stringifies
    const size = JSON.stringify(result)?.length ?? 0
    if (size > MAX_MCP_RESULT_CHARS) return { ok: false, error: `the result is too large (${size} characters of JSON; at most ${MAX_MCP_RESULT_CHARS})` }
  }
  return { ok: true, result }
}

/** An input schema the model API takes: a JSON Schema object whose `properties`, when present, is an object. */
export function validSchema (schema: unknown): schema is Record<string, unknown> {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return false
  const s = schema as Record<string, unknown>
  const objectish = (v: unknown) => v === undefined || (v !== null && typeof v === 'object' && !Array.isArray(v))
  return s.type === 'object' && objectish(s.properties) && (s.required === undefined || Array.isArray(s.required)) &&
    (typeof s.additionalProperties === 'boolean' || objectish(s.additionalProperties))
}

/** Tools one server may offer (OpenAI refuses a request with more than 128 tools: one server must not break every turn). */
export const MAX_MCP_TOOLS_PER_SERVER = 64

/**
 * The listed tools a server offers: the allow-listed ones with a schema the model API takes, one per name (two
 * names that map to one `<server>__<tool>` keep only the first, by name order so it never depends on list order),
 * at most MAX_MCP_TOOLS_PER_SERVER. `skipped`: the names (cut to 64) left out for a schema, a name or the cap.
 */
export function chooseTools<T extends { name: string; inputSchema: unknown }> (listed: readonly T[], { allowed, nameOf }: {
  allowed?: readonly string[]
  nameOf: (tool: string) => string
}): { chosen: T[]; skipped: string[] } {
  const only = allowed ? new Set(allowed) : undefined
  const offered = new Map<string, T>()
  const skipped: string[] = []
  for (const tool of [...listed].sort(byName)) {
    if (only && !only.has(tool.name)) continue
    const name = nameOf(tool.name)
    if (!validSchema(tool.inputSchema) || offered.has(name) || offered.size >= MAX_MCP_TOOLS_PER_SERVER) {
      skipped.push(tool.name.slice(0, 64))
      continue
    }
    offered.set(name, tool)
  }
  return { chosen: [...offered.values()], skipped }
}

/** Tools by name in code-unit order (not the locale's): the same offer whatever order the server lists them in. */
function byName (a: { name: string }, b: { name: string }): number {
  if (a.name < b.name) return -1
  // Stryker disable next-line ConditionalExpression,EqualityOperator: V8's sort only tells an answer below 0 from the rest, so 0 and 1 sort alike
  return a.name > b.name ? 1 : 0
}

/** An error's text with URL credentials hidden: /health and the logs must not show a configured password. */
export function safeError (err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1[redacted]@').slice(0, 500)
}
