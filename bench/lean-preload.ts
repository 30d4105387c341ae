/** Preload for the `app-lean` target: installs src/llm/lean-fetch.ts as the global fetch, so the app's openai SDK uses it unchanged. */
import { createLeanFetch } from '../src/llm/lean-fetch.js'

globalThis.fetch = createLeanFetch()
