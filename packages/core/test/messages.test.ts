/** The common failures say what to do next, not only what went wrong. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSandbox, type SandboxBackend } from '../src/index.js';
import './fixtures/backend-twin/index.ts';

let root: string;
let sandbox: SandboxBackend;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'agentbox-messages-'));
  sandbox = await openSandbox({ backend: 'twin', config: { root } });
});
afterAll(async () => {
  await sandbox?.close();
  await rm(root, { recursive: true, force: true });
});

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: Error & { code?: string }) => error,
  );

describe('messages that say what to do next', () => {
  it('a timeout says the tree was killed, to raise timeoutMs, and where the partial output is', async () => {
    const err = await failure(sandbox.exec('echo so-far; sleep 5', { timeoutMs: 300 }));
    expect(err.code).toBe('TIMEOUT');
    expect(err.message).toMatch(/timed out after 300 ms and its process tree was killed; raise timeoutMs/);
  });

  it('an unknown checkpoint points at listCheckpoints()', async () => {
    const err = await failure(sandbox.rollback(''));
    expect(err.code).toBe('CHECKPOINT_NOT_FOUND');
    expect(err.message).toMatch(/listCheckpoints\(\) lists the ones this sandbox has/);
  });

  it('a missing working directory says to create it or pass another', async () => {
    const err = await failure(sandbox.exec('true', { cwd: 'no/such/dir' }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toMatch(/does not exist: create it first, or pass another cwd/);
  });
});
