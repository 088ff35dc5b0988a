/**
 * The Docker daemon becoming unreachable (issue 18). dockerd is shared with other tests and is
 * never restarted here: the backend talks to it through a unix-socket proxy this file owns, and
 * the test cuts the proxy's connections in the middle of an exec, or stops the proxy between
 * execs (the socket gone, as while dockerd restarts). Each fault must end in a typed error within
 * a bound, never a hang; earlier checkpoints stay verifiable; and once the socket answers again
 * the same handle works. One sandbox for the file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentboxError, openSandbox } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/fault-proxy.ts';
import '../src/index.js';
import type { DockerSandbox } from '../src/index.js';
import { RUN_LABEL, runId, runObjects, TEST_CONFIG } from './helpers.ts';

/** How long a fault may take to surface as an error: far below any wait that would count as a hang. */
const BOUND_MS = 15_000;

let dir: string;
let proxy: FaultProxy;
let sandbox: DockerSandbox;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agentbox-dockerd-'));
  proxy = await startFaultProxy({ path: '/var/run/docker.sock' }, { path: join(dir, 'docker.sock') });
  sandbox = (await openSandbox({
    backend: 'docker',
    config: { ...TEST_CONFIG, docker: { socketPath: join(dir, 'docker.sock'), requestTimeoutMs: 5_000 } },
    policy: { labels: { [RUN_LABEL]: runId } },
  })) as DockerSandbox;
  await sandbox.writeFile('kept.txt', 'before the faults');
  await sandbox.checkpoint({ label: 'before' });
});

afterAll(async () => {
  await proxy?.restart();
  await sandbox?.close();
  await proxy?.stop();
  rmSync(dir, { recursive: true, force: true });
  expect(await runObjects()).toEqual([]);
});

/** The error a promise rejects with, and how long that took (fails if it resolves). */
async function failure(promise: Promise<unknown>): Promise<{ error: AgentboxError; ms: number }> {
  const started = Date.now();
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome, 'expected a rejection, but the call succeeded').toBeDefined();
  expect(outcome).toBeInstanceOf(AgentboxError);
  return { error: outcome as AgentboxError, ms: Date.now() - started };
}

describe('the Docker daemon unreachable (a socket proxy the test owns; dockerd itself is never restarted)', () => {
  it('connections cut mid-exec: SANDBOX_UNAVAILABLE within the bound, and the next exec works', async () => {
    // More commands than the pool has sessions: some run down open shells, the rest on plain execs.
    const before = { ...sandbox.sessions.stats };
    const handles = Array.from({ length: 10 }, () =>
      sandbox.spawn(['sh', '-c', 'echo started; exec sleep 30']),
    );
    await Promise.all(
      handles.map(async (handle) => {
        for await (const chunk of handle.stdout) if (Buffer.from(chunk).toString().includes('started')) break;
      }),
    );
    expect(sandbox.sessions.stats.session).toBeGreaterThan(before.session);
    expect(sandbox.sessions.stats.plain).toBeGreaterThan(before.plain);
    proxy.cut();
    for (const handle of handles) {
      const { error, ms } = await failure(handle.wait());
      expect(error.code, error.message).toBe('SANDBOX_UNAVAILABLE');
      expect(ms).toBeLessThan(BOUND_MS);
    }
    expect((await sandbox.exec('echo back')).stdout).toBe('back\n');
    // The commands cut off from the library were stopped, not left running.
    const left = await sandbox.exec('ps -o args | grep -c "^sleep 30$" || true');
    expect(left.stdout.trim()).toBe('0');
  });

  it('connections cut while commands start (session shells opening, a file write): each call settles within the bound', async () => {
    // A cut between an exec's start and the first listener on its stream once left the session
    // shell's start, and every call waiting for that shell, pending for good.
    for (const delay of [5, 10, 20, 30, 40, 50, 60, 80]) {
      proxy.cut();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const started = Date.now();
      const call = sandbox.writeFile('cut.txt', 'x'.repeat(200_000), { size: 200_000 }).then(
        () => undefined,
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, delay));
      proxy.cut();
      const outcome = await Promise.race([
        call,
        new Promise((resolve) => setTimeout(() => resolve('pending'), BOUND_MS)),
      ]);
      expect(outcome, `cut ${delay} ms in`).not.toBe('pending');
      if (outcome !== undefined) expect(outcome, `cut ${delay} ms in`).toBeInstanceOf(AgentboxError);
      expect(Date.now() - started).toBeLessThan(BOUND_MS);
    }
    expect((await sandbox.exec('echo back')).stdout).toBe('back\n');
  });

  it('the socket gone between execs: exec, file access and checkpoints fail typed within the bound; all work again when it is back', async () => {
    await proxy.stop();
    for (const call of [
      () => sandbox.exec('true'),
      () => sandbox.readTextFile('kept.txt'),
      () => sandbox.writeFile('new.txt', 'x'),
      () => sandbox.checkpoint(),
    ]) {
      const { error, ms } = await failure(call());
      expect(error.code, error.message).toBe('SANDBOX_UNAVAILABLE');
      expect(ms).toBeLessThan(BOUND_MS);
    }
    await proxy.restart();
    expect((await sandbox.exec('cat kept.txt')).stdout).toBe('before the faults');
    const report = await sandbox.verifyCheckpoints();
    expect(report).toMatchObject({ ok: true, damagedObjects: [], damagedManifests: [] });
    const [before] = await sandbox.listCheckpoints();
    expect(before?.label).toBe('before');
    await sandbox.writeFile('kept.txt', 'changed');
    await sandbox.rollback(before!.id);
    expect(await sandbox.readTextFile('kept.txt')).toBe('before the faults');
  });
});
