/**
 * The cost of stronger isolation (issue 16), each beside the weaker mode in the same run: the
 * docker backend under gVisor (runsc) beside runc (docker-gvisor.ts), and the local backend
 * under bubblewrap beside no isolation (local-bwrap.ts): exec, open to first exec, checkpoints.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBackend } from '@agentbox/core';
import { runGvisor } from './docker-gvisor.js';
import { skip } from './harness.js';
import { runBwrap } from './local-bwrap.js';
import { loadNote } from './tree.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');

export async function run(): Promise<void> {
  await runBwrap();
  try {
    execFileSync('bash', [join(repo, 'scripts/provision-docker.sh')], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } catch (error) {
    skip('docker (runsc)', `no Docker daemon or test image: ${(error as Error).message}`);
    return;
  }
  await loadBackend('docker');
  await loadNote('docker (runsc)');
  const image = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';
  await runGvisor({ image, helperImage: image, pull: 'never' });
}
