/**
 * createPool over docker: each sandbox handed out is a fresh container, the pool refills, close
 * removes every container it holds, a crashed holder's containers are found by the pool label,
 * and a refill that cannot open reaches the caller as a typed error. Objects are counted by this
 * run's label and the pool's name only.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createPool, NotFoundError, POOL_LABEL } from '@agentbox/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type DockerSandbox, sweepDocker } from '../src/index.js';
import { docker, RUN_LABEL, runId, TEST_CONFIG } from './helpers.ts';

const labels = { [RUN_LABEL]: runId };
const spec = { backend: 'docker', config: TEST_CONFIG, policy: { labels } } as const;

/** Ids of the containers (sandboxes and helpers) carrying this run's label and pool `name`'s. */
async function poolContainers(name: string): Promise<string[]> {
  const filters = JSON.stringify({ label: [`${RUN_LABEL}=${runId}`, `${POOL_LABEL}=${name}`] });
  return (await docker.listContainers({ all: true, filters })).map((c) => c.Id).sort();
}

afterAll(async () => {
  await sweepDocker({ labels, all: true });
});

describe('docker pool', () => {
  it('hands out a fresh container every time: a file written in one is absent from the next', async () => {
    await using pool = createPool({ spec, size: 2, name: `fresh-${runId}` });
    await pool.ready();
    const first = (await pool.open()) as DockerSandbox;
    await first.writeFile('note.txt', 'from the first task');
    expect((await first.exec(['cat', 'note.txt'])).stdout).toBe('from the first task');
    await first.close();
    const second = (await pool.open()) as DockerSandbox;
    expect(second.containerId).not.toBe(first.containerId);
    await expect(second.readTextFile('note.txt')).rejects.toBeInstanceOf(NotFoundError);
    expect((await second.exec(['ls', '-A'])).stdout).toBe('');
    await second.close();
  });

  it('refills after each open, and close removes every container it holds but the handed-out one', async () => {
    const name = `drain-${runId}`;
    const pool = createPool({ spec, size: 2, name });
    await pool.ready();
    expect(await poolContainers(name)).toHaveLength(2);
    const mine = (await pool.open()) as DockerSandbox;
    await pool.ready();
    expect(pool.idle).toBe(2);
    const held = await poolContainers(name);
    expect(held).toHaveLength(3);
    expect(held).toContain(mine.containerId);
    // Close while a refill is under way: it is aborted or removed when it lands.
    const another = await pool.open();
    await pool.close();
    expect((await poolContainers(name)).sort()).toEqual(
      [mine.containerId, (another as DockerSandbox).containerId].sort(),
    );
    expect((await mine.exec(['true'])).exitCode).toBe(0);
    await Promise.all([mine.close(), another.close()]);
    expect(await poolContainers(name)).toEqual([]);
  });

  it('with warmCheckpoints, each sandbox has its checkpoint helper running before it is handed out', async () => {
    const name = `warm-${runId}`;
    const helpers = async () => {
      const filters = JSON.stringify({
        label: [`${RUN_LABEL}=${runId}`, `${POOL_LABEL}=${name}`, 'agentbox.role=checkpoint-helper'],
        status: ['running'],
      });
      return (await docker.listContainers({ filters })).map((c) => c.Labels['agentbox.sandbox-id']);
    };
    const pool = createPool({ spec, size: 1, name, warmCheckpoints: true });
    await pool.ready();
    const sandbox = (await pool.open()) as DockerSandbox;
    expect(await helpers()).toContain(sandbox.id);
    await sandbox.writeFile('a.txt', 'one');
    const first = await sandbox.checkpoint();
    await sandbox.writeFile('a.txt', 'two');
    await sandbox.rollback(first);
    expect(await sandbox.readTextFile('a.txt')).toBe('one');
    await pool.close();
    await sandbox.close();
    expect(await poolContainers(name)).toEqual([]);
  });

  it("sweep finds a SIGKILLed holder's pooled containers by the pool label", async () => {
    const name = `crash-${runId}`;
    const holder = spawn(
      'npx',
      ['tsx', fileURLToPath(new URL('./fixtures/pool-holder.ts', import.meta.url)), name, runId, '2'],
      { stdio: ['ignore', 'pipe', 'inherit'], detached: true },
    );
    await new Promise<void>((resolve, reject) => {
      let out = '';
      holder.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (/^ready$/m.test(out)) resolve();
      });
      holder.on('exit', (code) =>
        reject(new Error(`the pool holder exited (${code}) before its pool was ready`)),
      );
    });
    const exited = new Promise((resolve) => holder.on('exit', resolve));
    // npx and the node it starts: the whole group dies at once, as in a crash.
    process.kill(-holder.pid!, 'SIGKILL');
    await exited;
    expect(await poolContainers(name)).toHaveLength(2);
    const found = await sweepDocker({ labels: { [POOL_LABEL]: name }, dryRun: true });
    expect(new Set(found.found.map((o) => o.sandboxId)).size).toBe(2);
    const swept = await sweepDocker({ labels: { [POOL_LABEL]: name } });
    expect(swept.failed).toEqual([]);
    expect(await poolContainers(name)).toEqual([]);
  });

  it('a refill that cannot open surfaces as the typed error, to onError or to the next open', async () => {
    const missing = { ...TEST_CONFIG, image: `agentbox/no-such-image:${runId}` };
    const pool = createPool({ spec: { ...spec, config: missing }, size: 1, name: `broken-${runId}` });
    await expect(pool.ready()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', backend: 'docker' });
    await expect(pool.open()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await pool.close();

    const errors: unknown[] = [];
    const reported = createPool({
      spec: { ...spec, config: missing },
      size: 1,
      name: `reported-${runId}`,
      onError: (error) => errors.push(error),
    });
    await expect(reported.ready()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(errors).toEqual([expect.objectContaining({ code: 'INVALID_ARGUMENT' })]);
    await reported.close();
    expect(await poolContainers(`broken-${runId}`)).toEqual([]);
  });
});
