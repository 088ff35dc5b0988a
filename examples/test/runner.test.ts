/**
 * The example runner (`npm run demo`), run as a child process from its TypeScript source: the
 * main job on its default (local backend, scripted model) goes to the end, and bad input ends
 * it early with a typed error instead of a stack trace.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const EXAMPLES_DIR = fileURLToPath(new URL('..', import.meta.url));

function runner(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/runner.ts', ...args], {
    cwd: EXAMPLES_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const plain = (text: string) => text.replaceAll(/\x1b\[[0-9;]*m/g, '');

describe.concurrent('the example runner', () => {
  const roots: string[] = [];
  afterAll(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

  it('runs the agent loop to the end: a destructive mistake is rolled back, a runaway command cut off', async () => {
    const root = await mkdtemp(join(tmpdir(), 'agentbox-demo-'));
    roots.push(root);
    // An unrelated sleeper on the host is not the sandbox's: the runner must not count it.
    const bystander = spawn('sleep', ['30'], { cwd: tmpdir(), stdio: 'ignore' });
    const run = await runner(['--config', JSON.stringify({ root })]).finally(() => bystander.kill());
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = plain(run.stdout);
    expect(out).toContain('▸ open a local sandbox');
    // After the rollback the app runs again and the README is the original.
    expect(out).toMatch(
      /▸ Verify\.\n {2}exec .*\n(?: {2}│ .*\n)*? {2}│ # notes\n(?: {2}│ .*\n)*? {2}│ hello from the app\n/,
    );
    expect(out).toContain('(failed,'); // the timeout, reported to the model as a failed tool call
    expect(out).toContain('still here; sleepers left: 0');
    expect(out).toMatch(/▸ finished: after 11 turns\n {2}checkpoints: \S+ \(before cleanup\)\n$/);
    // The sandbox was closed: nothing is left under its root.
    expect(await readdir(root)).toEqual([]);
  });

  it('ends with a typed error, not a stack, when the backend config is wrong', async () => {
    const run = await runner(['--backend', 'ssh', '--config', '{"port": 0}']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^runner: INVALID_ARGUMENT: ssh\.open: invalid ssh config: config\.host: /);
    expect(run.stderr).not.toContain('    at ');
  });

  it('refuses an unknown backend and input that is not JSON', async () => {
    const unknown = await runner(['--backend', 'nope']);
    expect(unknown).toMatchObject({
      code: 2,
      stderr: 'runner: unknown backend "nope"; known: docker, local, ssh\n',
    });
    const notJson = await runner(['--config', '{x']);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/^runner: the backend config is not JSON: /);
  });
});
