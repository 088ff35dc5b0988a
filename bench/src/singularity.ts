/**
 * Singularity backend: a small exec vs a bare `apptainer exec instance://NAME true` of the same
 * CLI (the primitive the plain path wraps; the backend's fast path keeps a shell open in the
 * instance). A real apptainer/singularity on PATH with AGENTBOX_SINGULARITY_IMAGE is used when
 * present, else the package's test stand-in over a busybox root (root only).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadBackend, openSandbox } from '@agentbox/core';
import { medianMs, report, skip } from './harness.js';

const run_ = promisify(execFile);
const PACKAGE = fileURLToPath(new URL('../../packages/backend-singularity/', import.meta.url));

export async function run(): Promise<void> {
  await loadBackend('singularity');
  const { findCli } = (await import('@agentbox/backend-singularity')) as {
    findCli(binary: string | undefined, path: string): { path: string } | string;
  };
  const real = findCli(undefined, process.env.PATH ?? '');
  let binary: string;
  let image: string;
  const cleanup: string[] = [];
  if (typeof real !== 'string' && process.env.AGENTBOX_SINGULARITY_IMAGE) {
    binary = real.path;
    image = process.env.AGENTBOX_SINGULARITY_IMAGE;
  } else if (process.getuid?.() === 0) {
    const standin = (await import(join(PACKAGE, 'test', 'standin.ts'))) as {
      STANDIN: string;
      busyboxRootfs(): string;
      useStandinState(): string;
    };
    binary = standin.STANDIN;
    image = standin.busyboxRootfs();
    cleanup.push(standin.useStandinState());
  } else {
    skip('singularity', 'no real apptainer (with AGENTBOX_SINGULARITY_IMAGE) and not root for the stand-in');
    return;
  }
  const root = await mkdtemp(join(tmpdir(), 'agentbox-bench-singularity-'));
  try {
    await using sb = await openSandbox({ backend: 'singularity', config: { binary, image, root } });
    const name = (sb as unknown as { instance: { name: string } }).instance.name;
    const ours = await medianMs(() => sb.exec(['true']), { runs: 50 });
    const bare = await medianMs(() => run_(binary, ['exec', `instance://${name}`, 'true']), { runs: 20 });
    report({
      bench: 'exec true',
      backend: `singularity (${binary.startsWith(PACKAGE) ? 'stand-in' : binary})`,
      value: ours,
      unit: 'ms',
      baseline: 'apptainer exec instance://NAME true',
      baselineValue: bare,
    });
  } finally {
    await rm(root, { recursive: true, force: true });
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
  }
}
