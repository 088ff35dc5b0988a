/** Local backend: a small exec vs a bare child_process.spawn; checkpoint/rollback vs `cp -a`. */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBackend, openSandbox } from '@agentbox/core';
import { report, timeMs } from './harness.js';

function bareSpawn(argv: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, stdio: 'pipe' });
    child.stdout.resume();
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', () => resolve());
  });
}

export async function run(): Promise<void> {
  await loadBackend('local');
  const root = await mkdtemp(join(tmpdir(), 'agentbox-bench-'));
  try {
    await using sb = await openSandbox({ backend: 'local', config: { root } });

    // Interleave the two so machine noise hits both alike.
    const runs = 200;
    const ours: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < 10; i++) {
      await sb.exec(['true']);
      await bareSpawn(['true'], sb.workdir);
    }
    for (let i = 0; i < runs; i++) {
      ours.push(await timeMs(() => sb.exec(['true'])));
      bare.push(await timeMs(() => bareSpawn(['true'], sb.workdir)));
    }
    report({
      bench: 'exec true',
      backend: 'local',
      value: median(ours),
      unit: 'ms',
      baseline: 'child_process.spawn',
      baselineValue: median(bare),
    });

    // A 10,000-file, 200 MB tree; one file changed between checkpoints.
    await sb.exec(
      'mkdir -p tree && cd tree && i=0; while [ $i -lt 100 ]; do mkdir d$i; i=$((i+1)); done; ' +
        'head -c 20971520 /dev/urandom > seed; ' +
        'i=0; while [ $i -lt 10000 ]; do dd if=seed of=d$((i % 100))/f$i bs=20480 count=1 skip=$((i % 1000)) 2>/dev/null; i=$((i+1)); done; rm seed',
      { timeoutMs: 600_000 },
    );
    const first = await sb.checkpoint({ label: 'base' });
    await sb.exec('echo changed >> tree/d7/f7');
    const checkpointMs = await timeMs(() => sb.checkpoint({ label: 'one change' }));
    await sb.exec('echo again >> tree/d8/f8 && rm tree/d9/f9');
    const rollbackMs = await timeMs(() => sb.rollback(first));
    const copyMs = await timeMs(() => bareSpawn(['cp', '-a', 'tree', 'tree-copy'], sb.workdir));
    report({
      bench: 'checkpoint 10k files/200 MB, 1 changed',
      backend: 'local',
      value: checkpointMs,
      unit: 'ms',
      baseline: 'cp -a of the tree',
      baselineValue: copyMs,
    });
    report({
      bench: 'rollback 10k files/200 MB, 2 changed',
      backend: 'local',
      value: rollbackMs,
      unit: 'ms',
      baseline: 'cp -a of the tree',
      baselineValue: copyMs,
    });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
