// Mutation testing (`npm run mutate`, docs/testing.md): the modules that parse, decide or verify, against the
// fast unit tests of vitest.mutate.config.ts. Not part of .ci/run: a run takes minutes.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  checkers: [],
  mutate: [
    'src/auth/api-keys.ts',
    'src/auth/authenticator.ts',
    'src/auth/credentials.ts',
    'src/auth/jwt.ts',
    'src/auth/session-access.ts',
    'src/chat/event-log.ts',
    'src/chat/limits.ts',
    'src/llm/accumulate.ts',
    'src/llm/sse-decoder.ts',
    'src/quota/address-key.ts',
    'src/quota/counter.ts',
    'src/quota/token-budget.ts',
    'src/quota/turn-slots.ts',
    'src/store/sql-codec.ts',
    // The owner lease, seq reservation and fencing of the memory store (claimSession … releaseSeqs); the
    // Postgres store's twin of this logic is SQL, exercised by test/store/postgres.test.ts.
    'src/store/memory.ts:162-229',
    'src/tools/mcp/config.ts',
    'src/tools/mcp/result.ts',
    'src/tools/registry.ts'
  ],
  coverageAnalysis: 'perTest',
  // Another suite may share this 2-core machine; one test process keeps timings honest.
  concurrency: 1,
  timeoutMS: 5_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: 'reports/mutation/.stryker-tmp',
  cleanTempDir: true,
  thresholds: { high: 90, low: 80, break: null }
}
