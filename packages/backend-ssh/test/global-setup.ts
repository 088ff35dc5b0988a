/**
 * Runs scripts/provision-sshd.sh (idempotent: it starts the private test sshd only when it is not
 * running) and hands its state file to the tests.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startLeakWatch } from '../../../scripts/leak-check.ts';
import type { SshdState } from './sshd.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..');

export default function setup(project: TestProject): () => Promise<void> {
  execFileSync('bash', [join(repo, 'scripts/provision-sshd.sh')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const stateDir = process.env.AGENTBOX_SSHD_DIR ?? join(repo, '.tmp/sshd');
  const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as SshdState;
  project.provide('sshd', state);
  // After the suite: this run's sandbox root (sshd.ts TEST_ROOT) on the test host must hold no workspace.
  return startLeakWatch({
    name: 'backend-ssh',
    extra: () => {
      const session = process.env.AGENTBOX_TEST_SESSION;
      const roots = state.users.map((user) => join(homedir(user), '.agentbox', `test-${session}`));
      const found = roots.flatMap((root) =>
        existsSync(root) ? readdirSync(root).map((name) => `remote workspace ${join(root, name)}`) : [],
      );
      for (const root of roots) rmSync(root, { recursive: true, force: true });
      return found;
    },
  });
}

/** A local user's home directory (the test sshd runs on this machine). */
function homedir(user: string): string {
  return execFileSync('getent', ['passwd', user], { encoding: 'utf8' }).split(':')[5]!;
}

declare module 'vitest' {
  export interface ProvidedContext {
    sshd: SshdState;
  }
}
