/** The fast unit tests `npm run mutate` runs against each mutant: no process spawning, browsers or long Postgres runs. */
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: [
      'test/auth/api-keys.test.ts',
      'test/auth/authenticator.test.ts',
      'test/auth/credentials.test.ts',
      'test/auth/hardening.test.ts',
      'test/auth/jwt.test.ts',
      'test/auth/session-access.test.ts',
      'test/auth/verify.test.ts',
      'test/chat/event-log.test.ts',
      'test/chat/limits.test.ts',
      'test/llm/accumulate.test.ts',
      'test/llm/lean-fetch.test.ts',
      'test/llm/sse-decoder.test.ts',
      'test/llm/tool-loop.test.ts',
      'test/quota/address-key.test.ts',
      'test/quota/counter.test.ts',
      'test/quota/token-budget.test.ts',
      'test/quota/turn-slots.test.ts',
      'test/store/memory-lease.test.ts',
      'test/store/sql-codec.test.ts',
      'test/tools/mcp-config.test.ts',
      'test/tools/mcp-result.test.ts',
      'test/tools/registry-sources.test.ts',
      'test/tools/registry.test.ts'
    ],
    // A mutant that leaves a promise hanging fails its test here instead of timing the whole run out.
    testTimeout: 5_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default']
  }
})
