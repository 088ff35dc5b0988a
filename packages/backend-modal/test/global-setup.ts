/**
 * Runs scripts/provision-docker.sh: idempotent, it starts dockerd only when no daemon answers and
 * builds the test image (busybox-static, FROM scratch, never pulled) only when it is missing or stale.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLeakWatch } from '../../../scripts/leak-check.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..');

export default function setup(): () => Promise<void> {
  execFileSync('bash', [join(repo, 'scripts/provision-docker.sh')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  // After the suite: no container or image of this run's emulators, no sandbox labelled with its run ids.
  return startLeakWatch({ name: 'backend-modal', docker: true });
}
