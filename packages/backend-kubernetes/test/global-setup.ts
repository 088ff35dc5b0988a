/**
 * Runs scripts/provision-docker.sh (idempotent: a daemon and the test image), then watches for
 * leaks: after the suite, no container or volume of this run's stand-ins may be left.
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
  return startLeakWatch({ name: 'backend-kubernetes', docker: true });
}
