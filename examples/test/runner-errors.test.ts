/** How the example runner ends on an error: the code and the message, no stack unless asked for. */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const EXAMPLES_DIR = fileURLToPath(new URL('..', import.meta.url));

function runner(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/runner.ts', ...args], {
    cwd: EXAMPLES_DIR,
    env: { ...process.env, AGENTBOX_DEBUG: '', ...env },
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

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('the example runner on an unreachable model endpoint', () => {
  const roots: string[] = [];
  afterAll(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

  it('prints MODEL_UNAVAILABLE with the URL and ECONNREFUSED, no stack; AGENTBOX_DEBUG=1 adds it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'agentbox-demo-'));
    roots.push(root);
    const url = `http://127.0.0.1:${await closedPort()}/v1`;
    const args = ['--config', JSON.stringify({ root }), '--model-url', url, '--model', 'm'];
    const run = await runner(args);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(
        `^runner: MODEL_UNAVAILABLE: openai\\.complete: cannot reach the model endpoint ${url}/chat/completions: .*\\(ECONNREFUSED\\)`,
      ),
    );
    expect(run.stderr).not.toContain('    at ');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    // The sandbox was closed on the way out.
    expect(await readdir(root)).toEqual([]);

    const debug = await runner(args, { AGENTBOX_DEBUG: '1' });
    expect(debug.code).toBe(1);
    expect(debug.stderr).toContain('    at ');
    expect(debug.stderr).toMatch(/^caused by: TypeError: fetch failed/m);
  }, 120_000);
});
