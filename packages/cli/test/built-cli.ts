/**
 * The `agentbox` executable users run: dist/cli.js, built here when a source file is newer (the
 * tests run it as a child process, and a tsx start per run costs seconds).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(PACKAGE_DIR, 'dist', 'cli.js');

/** Newest modification time under `dir` (ms). */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of execFileSync('find', [dir, '-type', 'f'], { encoding: 'utf8' }).split('\n'))
    if (entry) latest = Math.max(latest, statSync(entry).mtimeMs);
  return latest;
}

/** Build dist/cli.js if it is missing or older than the sources; once per test file. */
export function ensureBuiltCli(): void {
  if (!existsSync(join(PACKAGE_DIR, '../core/dist/index.js')))
    throw new Error('the workspace packages are not built: run `pnpm -r build` at the repository root first');
  if (!existsSync(BIN) || statSync(BIN).mtimeMs < newest(join(PACKAGE_DIR, 'src')))
    execFileSync(join(PACKAGE_DIR, '../../node_modules/.bin/tsup'), { cwd: PACKAGE_DIR, stdio: 'ignore' });
}
