/**
 * Runs scripts/provision-docker.sh: idempotent, it starts dockerd only when no daemon answers and
 * builds the test image (busybox-static, FROM scratch, never pulled) only when it is missing or stale.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..');

export default function setup(): void {
  execFileSync('bash', [join(repo, 'scripts/provision-docker.sh')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}
