/**
 * For the `app-base` target: the app as it was at a git revision (`--base-rev`, default DEFAULT_BASE_REV), the previous app
 * every change is compared against in the same run. Prepared once per run: `git archive <rev> | tar -x` into a temporary
 * directory (no worktree is left behind, nothing in the repository changes), the repository's node_modules symlinked into
 * it (an older revision's dependencies are a subset), started from source through tsx like `app` with the same env — an
 * older src/config.ts is a zod object, which strips the keys it does not know. Removed at the end of the run.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, symlinkSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from './procs.js'

/** The commit this comparison started from. */
export const DEFAULT_BASE_REV = '5a5ddd8'

export interface BaseApp {
  /** The revision as given, and the commit it names (short). */
  rev: string
  commit: string
  /** The extracted tree: the server's working directory. */
  dir: string
  cleanup: () => void
}

export function prepareBaseApp ({ rev, repo = ROOT }: { rev: string, repo?: string }): BaseApp {
  const git = (args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
  let commit: string
  try {
    commit = git(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`])
  } catch {
    throw new Error(`--base-rev ${rev}: not a commit in ${repo}`)
  }
  const dir = mkdtempSync(join(tmpdir(), 'rtb-app-base-'))
  const cleanup = () => {
    process.off('exit', cleanup)
    // The link first, so nothing can follow it into the repository's node_modules.
    try { unlinkSync(join(dir, 'node_modules')) } catch {}
    rmSync(dir, { recursive: true, force: true })
  }
  // A bench that crashes still removes the tree.
  process.once('exit', cleanup)
  try {
    const tar = execFileSync('git', ['-C', repo, 'archive', '--format=tar', commit], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] })
    execFileSync('tar', ['-x', '-C', dir], { input: tar, stdio: ['pipe', 'ignore', 'pipe'] })
    if (!existsSync(join(dir, 'src/server.ts'))) throw new Error(`--base-rev ${rev}: no src/server.ts at ${commit.slice(0, 7)}`)
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir')
  } catch (err) {
    cleanup()
    throw err
  }
  return { rev, commit: commit.slice(0, 7), dir, cleanup }
}
