/** createStore picks the backend STORAGE names, without connecting until init(). */
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { testConfig } from '../../src/config.js'
import { createStore } from '../../src/store/index.js'

const logger = pino({ level: 'silent' })

describe('createStore', () => {
  it('builds the memory, postgres and supabase stores from the configuration', async () => {
    const memory = createStore(testConfig(), logger)
    expect(memory.kind).toBe('memory')
    const postgres = createStore(testConfig({ STORAGE: 'postgres', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' }), logger)
    expect(postgres.kind).toBe('postgres')
    const supabase = createStore(testConfig({ STORAGE: 'supabase', SUPABASE_URL: 'http://127.0.0.1:1', SUPABASE_KEY: 'k' }), logger)
    expect(supabase.kind).toBe('supabase')
    // Nothing was contacted: the unreachable ones only fail when used, with retryable errors.
    await expect(postgres.ping()).rejects.toMatchObject({ name: 'StoreError', retryable: true })
    await expect(supabase.ping()).rejects.toMatchObject({ name: 'StoreError', retryable: true })
    for (const s of [memory, postgres, supabase]) await s.close()
  })
})
