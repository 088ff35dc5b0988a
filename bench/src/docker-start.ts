/**
 * Time to a usable docker sandbox, beside `docker run --rm IMAGE true` in the same run: a cold
 * open to its first exec, and an open from a warm pool (createPool) to its first exec. The three
 * are interleaved so machine noise hits all alike; before each pool sample the pool is full
 * again (a pool in use refills between tasks), and closing is not counted. The pool figure is
 * also shown beside the next exec on the same sandbox: what a pooled open adds to a plain exec.
 * And the first checkpoint of a pooled sandbox, from a pool with `warmCheckpoints` beside one
 * without (whose sandboxes start their checkpoint helper at that checkpoint).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createPool, openSandbox, type SandboxBackend } from '@agentbox/core';
import { report, timeMs } from './harness.js';
import { makeTree, median } from './tree.js';

const sh = promisify(execFile);

export async function benchStart(
  config: { image: string; helperImage: string; pull: 'never' },
  samples = 11,
): Promise<void> {
  const runs: number[] = [];
  const colds: number[] = [];
  const pooled: number[] = [];
  const closes: number[] = [];
  const nextExecs: number[] = [];
  await using pool = createPool({
    spec: { backend: 'docker', config },
    size: 2,
    name: `bench-${process.pid}`,
  });
  const firstExec = async (sandbox: SandboxBackend) => {
    const r = await sandbox.exec(['true']);
    if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
  };
  // One round of each first, uncounted: the first open in a process pays for what is cached after it.
  for (let i = -1; i < samples; i++) {
    const run = await timeMs(() => sh('docker', ['run', '--rm', '--network', 'none', config.image, 'true']));
    let cold: SandboxBackend | undefined;
    const coldMs = await timeMs(async () => {
      cold = await openSandbox({ backend: 'docker', config });
      await firstExec(cold);
    });
    const closeMs = await timeMs(() => cold!.close());
    await pool.ready();
    let warm: SandboxBackend | undefined;
    const poolMs = await timeMs(async () => {
      warm = await pool.open();
      await firstExec(warm);
    });
    const nextMs = await timeMs(() => firstExec(warm!));
    await warm!.close();
    if (i < 0) continue;
    runs.push(run);
    colds.push(coldMs);
    pooled.push(poolMs);
    closes.push(closeMs);
    nextExecs.push(nextMs);
  }
  console.error(`pool open to first exec, ms: ${pooled.map(Math.round).join(' ')}`);
  const baseline = 'docker run --rm IMAGE true';
  report({
    bench: 'open from a warm pool to first exec',
    backend: 'docker',
    value: median(pooled),
    unit: 'ms',
    baseline,
    baselineValue: median(runs),
  });
  report({
    bench: 'open from a warm pool to first exec',
    backend: 'docker',
    value: median(pooled),
    unit: 'ms',
    baseline: 'the next exec true on the same sandbox',
    baselineValue: median(nextExecs),
  });
  report({
    bench: 'open to first exec (cold)',
    backend: 'docker',
    value: median(colds),
    unit: 'ms',
    baseline,
    baselineValue: median(runs),
  });
  report({
    bench: 'close (container and volumes removed)',
    backend: 'docker',
    value: median(closes),
    unit: 'ms',
    baseline,
    baselineValue: median(runs),
  });
}

export async function benchPooledCheckpoint(
  config: { image: string; helperImage: string; pull: 'never' },
  samples = 5,
): Promise<void> {
  const pool = (warmCheckpoints: boolean) =>
    createPool({
      spec: { backend: 'docker', config },
      size: 1,
      name: `bench-${warmCheckpoints ? 'warm' : 'cold'}-${process.pid}`,
      warmCheckpoints,
    });
  await using warm = pool(true);
  await using cold = pool(false);
  const first = async (from: typeof warm) => {
    await from.ready();
    await using sandbox = await from.open();
    const made = await sandbox.exec(makeTree('tree', 200, 20_480));
    if (made.exitCode !== 0) throw new Error(`making the tree failed: ${made.stderr}`);
    // Awaited before returning: `await using` closes the sandbox as the function returns.
    return await timeMs(() => sandbox.checkpoint());
  };
  const warmed: number[] = [];
  const plain: number[] = [];
  // One round of each first, uncounted.
  for (let i = -1; i < samples; i++) {
    const w = await first(warm);
    const c = await first(cold);
    if (i < 0) continue;
    warmed.push(w);
    plain.push(c);
  }
  console.error(
    `first checkpoint of a pooled sandbox, ms: warmCheckpoints ${warmed.map(Math.round).join(' ')}; without ${plain.map(Math.round).join(' ')}`,
  );
  report({
    bench: 'first checkpoint (200 files/4 MB) of a sandbox from a pool with warmCheckpoints',
    backend: 'docker',
    value: median(warmed),
    unit: 'ms',
    baseline: 'the same from a pool without it',
    baselineValue: median(plain),
  });
}
