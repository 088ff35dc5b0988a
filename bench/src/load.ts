/**
 * Load (issue 18): 20 sandboxes with 10 callers each running execs at once, on one Docker daemon
 * and on one SSH host; every result is checked byte for byte (scripts/load.ts). Throughput and
 * p50/p99 latency under load, beside the same exec on one sandbox with one caller (the unloaded
 * figure); execs that fail are counted and named on stderr. BENCH_LOAD=NxM changes the shape (default 20x10), BENCH_LOAD_ROUNDS the execs per caller.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBackend, openSandbox, type SandboxBackend } from '@agentbox/core';
import { type LoadShape, loadShape, openMany, runLoad } from '../../scripts/load.js';
import { report, skip } from './harness.js';
import { provision } from './ssh.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';
const shape: LoadShape = loadShape(process.env.BENCH_LOAD ?? '20x10', {
  sandboxes: 20,
  concurrent: 10,
  rounds: Number(process.env.BENCH_LOAD_ROUNDS ?? 5),
  bytes: 16_384,
});

async function measure(backend: string, open: () => Promise<SandboxBackend>): Promise<void> {
  const sandboxes = await openMany(shape.sandboxes, open);
  try {
    // Unloaded: one sandbox, one caller, the same exec.
    const alone = await runLoad(sandboxes.slice(0, 1), { ...shape, sandboxes: 1, concurrent: 1, rounds: 20 });
    const loaded = await runLoad(sandboxes, shape);
    const bad = [...alone.mismatches, ...loaded.mismatches];
    if (bad.length > 0)
      throw new Error(`load ${backend}: ${bad.length} results not byte-exact: ${bad.slice(0, 5).join('; ')}`);
    const name = `${shape.sandboxes}x${shape.concurrent} execs`;
    const baseline = '1 sandbox, 1 caller';
    report({
      bench: `${name} throughput`,
      backend,
      value: loaded.execsPerSecond,
      unit: 'ops/s',
      baseline,
      baselineValue: alone.execsPerSecond,
    });
    report({
      bench: `${name} p50`,
      backend,
      value: loaded.p50Ms,
      unit: 'ms',
      baseline,
      baselineValue: alone.p50Ms,
    });
    report({
      bench: `${name} p99`,
      backend,
      value: loaded.p99Ms,
      unit: 'ms',
      baseline,
      baselineValue: alone.p99Ms,
    });
    console.error(
      `load ${backend}: ${loaded.execs} execs byte-exact in ${loaded.wallMs} ms (max ${loaded.maxMs} ms); ${loaded.failures.length} failed (typed errors)${loaded.failures.length ? `, e.g. ${loaded.failures.slice(0, 3).join('; ')}` : ''}`,
    );
  } finally {
    await Promise.allSettled(sandboxes.map((sandbox) => sandbox.close()));
  }
}

export async function run(): Promise<void> {
  try {
    execFileSync('bash', [join(repo, 'scripts/provision-docker.sh')], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await loadBackend('docker');
    await measure('docker', () =>
      openSandbox({ backend: 'docker', config: { image: IMAGE, helperImage: IMAGE, pull: 'never' } }),
    );
  } catch (error) {
    skip('load docker', (error as Error).message);
  }
  const s = provision();
  if (!s) return;
  await loadBackend('ssh');
  await measure('ssh', () =>
    openSandbox({
      backend: 'ssh',
      config: {
        host: s.host,
        port: s.port,
        user: s.users[0]!,
        auth: { type: 'privateKey', path: s.privateKeyFile },
        knownHostsFile: s.knownHostsFile,
        root: '~/.agentbox/bench',
      },
    }),
  );
}
