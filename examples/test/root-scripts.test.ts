/**
 * The README's root commands work on a machine with Node and npm but no global pnpm: each root
 * script reaches pnpm only through scripts/pnpm.sh (the pinned version, fetched by npx).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** PATH without any directory that holds a pnpm (pnpm itself, or a package manager shim). */
function pathWithoutPnpm(): string {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return dirs
    .filter((dir) => {
      try {
        readFileSync(join(dir, 'pnpm'));
        return false;
      } catch {
        return !dir.includes('node_modules');
      }
    })
    .join(delimiter);
}

const env: NodeJS.ProcessEnv = { ...process.env, PATH: pathWithoutPnpm() };
for (const name of Object.keys(env)) if (name.startsWith('npm_') || name.startsWith('PNPM')) delete env[name];

async function npmRun(...args: string[]) {
  return run('npm', ['run', '--silent', ...args], { cwd: ROOT, env, maxBuffer: 64 * 1024 * 1024 });
}

// These test npm scripts, not the runtime: the second pass of scripts/test-all.sh (another Node) skips them.
const secondPass = process.env.AGENTBOX_TEST_PASS === 'second';
if (secondPass) console.info('root scripts: skipped in the second Node.js pass (they ran in the first)');

describe.skipIf(secondPass)('root scripts without a global pnpm', () => {
  it('the test machine really has no pnpm on this PATH', async () => {
    await expect(run('sh', ['-c', 'command -v pnpm'], { env })).rejects.toThrow();
  });

  it('no root script calls a bare pnpm', () => {
    const scripts: Record<string, string> = JSON.parse(
      readFileSync(join(ROOT, 'package.json'), 'utf8'),
    ).scripts;
    for (const [name, text] of Object.entries(scripts))
      expect(
        text.split(/&&|\|\||;/).map((part) => part.trim().split(/\s+/)[0]),
        name,
      ).not.toContain('pnpm');
  });

  it('npm run demo installs, builds and runs the example runner to the end', async () => {
    const { stdout } = await npmRun('demo');
    expect(stdout.replaceAll(/\x1b\[[0-9;]*m/g, '')).toContain('▸ finished: after 11 turns');
  }, 600_000);

  it('npm run bench -- --list names the benchmark groups', async () => {
    const { stdout } = await npmRun('bench', '--', '--list');
    expect(stdout.trim().split('\n')).toEqual(expect.arrayContaining(['local', 'docker', 'ssh']));
  }, 600_000);

  it('npm run lint runs biome', async () => {
    const { stdout, stderr } = await npmRun('lint');
    expect(`${stdout}${stderr}`).toMatch(/Checked \d+ files?/);
  }, 120_000);
});
