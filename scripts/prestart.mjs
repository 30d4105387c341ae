/**
 * Runs before `npm start`: compiles src/ → dist/ when TypeScript is installed (a development checkout);
 * a production install without devDependencies runs the dist/ it was built with.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const tsc = 'node_modules/typescript/bin/tsc'
if (existsSync(tsc)) {
  const build = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' })
  process.exit(build.status ?? 1)
}
if (!existsSync('dist/server.js')) {
  process.stderr.write('dist/ is missing and TypeScript is not installed: run `npm ci && npm run build` before pruning dev dependencies\n')
  process.exit(1)
}
