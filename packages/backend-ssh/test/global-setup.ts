/**
 * Runs scripts/provision-sshd.sh (idempotent: it starts the private test sshd only when it is not
 * running) and hands its state file to the tests.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import type { SshdState } from './sshd.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..');

export default function setup(project: TestProject): void {
  execFileSync('bash', [join(repo, 'scripts/provision-sshd.sh')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const stateDir = process.env.AGENTBOX_SSHD_DIR ?? join(repo, '.tmp/sshd');
  const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as SshdState;
  project.provide('sshd', state);
}

declare module 'vitest' {
  export interface ProvidedContext {
    sshd: SshdState;
  }
}
