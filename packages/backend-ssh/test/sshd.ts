/** The private test sshd (started by scripts/provision-sshd.sh) and configs that reach it. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inject, onTestFinished } from 'vitest';
import type { SshConfig } from '../src/index.js';

export interface SshdState {
  host: string;
  port: number;
  pid: number;
  pidFile: string;
  stateDir: string;
  logFile: string;
  knownHostsFile: string;
  hostKeys: Record<'ed25519' | 'rsa', { publicKeyFile: string; fingerprint: string }>;
  users: [string, string];
  password: string;
  privateKeyFile: string;
  passphraseKeyFile: string;
  passphrase: string;
  unauthorizedKeyFile: string;
}

export function sshd(): SshdState {
  return inject('sshd');
}

/**
 * Where this run's sandboxes go on the test host (under the user's home) unless a test names
 * another root: one directory per run, which the leak check (global-setup.ts) finds empty at the end.
 */
export const TEST_ROOT = `.agentbox/test-${process.env.AGENTBOX_TEST_SESSION ?? 'nosession'}`;

/** A config for the non-root test user `agentbox-a` (or `user`), verified against the provisioned known_hosts. */
export function sshConfig(overrides: Partial<SshConfig> = {}, user?: string): SshConfig {
  const s = sshd();
  return {
    host: s.host,
    port: s.port,
    user: user ?? s.users[0],
    auth: { type: 'privateKey', path: s.privateKeyFile },
    knownHostsFile: s.knownHostsFile,
    root: `~/${TEST_ROOT}`,
    ...overrides,
  };
}

/** A fresh local directory for known_hosts files a test writes, removed when the test ends. */
export function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentbox-ssh-test-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const run = promisify(execFile);

/** Run a command on the test host as `user` through the OpenSSH client (independent of the backend). */
export async function sshCli(command: string, user?: string): Promise<string> {
  const s = sshd();
  const { stdout } = await run('ssh', [
    '-o',
    'BatchMode=yes',
    '-o',
    `UserKnownHostsFile=${s.knownHostsFile}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-i',
    s.privateKeyFile,
    '-p',
    String(s.port),
    `${user ?? s.users[0]}@${s.host}`,
    command,
  ]);
  return stdout;
}
