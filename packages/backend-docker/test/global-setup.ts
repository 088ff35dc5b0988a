/**
 * Runs scripts/provision-docker.sh: idempotent, it starts dockerd only when no daemon answers and
 * builds the test image (busybox-static, FROM scratch, never pulled) only when it is missing or stale;
 * then scripts/provision-gvisor.sh, which registers runsc in that daemon if it lacks it (or says
 * why it cannot, and the runsc tests skip). After the suite, the leak check (scripts/leak-check.ts)
 * names any container, volume, network or image of this run still there, and any temp folder.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLeakWatch } from '../../../scripts/leak-check.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..');

export default function setup(): () => Promise<void> {
  for (const script of ['provision-docker.sh', 'provision-gvisor.sh'])
    execFileSync('bash', [join(repo, 'scripts', script)], { stdio: ['ignore', 'inherit', 'inherit'] });
  return startLeakWatch({ name: 'backend-docker', docker: true });
}
