/**
 * A key the server has authorized, refused all the same because sshd cannot read the
 * authorized_keys file: it sits under a 0700 directory (as `mktemp -d` makes) that the login user
 * cannot enter. The client only hears "refused"; the AUTHENTICATION error must say what to check.
 * A private sshd of this test's own, on a free port, with the provisioned host keys and users.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentboxError, openSandbox } from '@agentbox/core';
import { afterAll, describe, expect, it } from 'vitest';
import '../src/index.js';
import { offersPublicKey, refusedKeyHint } from '../src/auth-hint.js';
import { SshConfigSchema } from '../src/config.js';
import { sshConfig, sshd } from './sshd.ts';

const SSHD = '/usr/sbin/sshd';
const canRun = process.getuid?.() === 0;
if (!canRun)
  console.info('auth hint, real sshd part: skipped (starting an sshd that switches users needs root)');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

async function listening(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log()}`);
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on ${port}: ${log()}`);
}

const cleanups: (() => void | Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('the AUTHENTICATION error for a refused key', () => {
  it('names what to check (parent directories, StrictModes, the sshd log) only where a key was offered', () => {
    const withKey = SshConfigSchema.parse(sshConfig());
    const withPassword = SshConfigSchema.parse(sshConfig({ auth: { type: 'password', password: 'x' } }));
    expect(offersPublicKey(withKey)).toBe(true);
    expect(offersPublicKey(withPassword)).toBe(false);
    expect(refusedKeyHint('agentbox-a')).toMatch(/every directory above it must be searchable by agentbox-a/);
  });

  it.skipIf(!canRun)(
    'a key under a 0700 directory sshd cannot enter: the error says why; opened up, the same key logs in',
    async () => {
      const s = sshd();
      const user = s.users[0];
      // The authorized_keys file, readable itself, under a 0700 directory owned by root (mktemp -d).
      const hidden = mkdtempSync(join(tmpdir(), 'agentbox-ssh-0700-'));
      cleanups.push(() => rmSync(hidden, { recursive: true, force: true }));
      expect(readFileSync('/proc/self/status', 'utf8')).toMatch(/^Uid:\s+0\s/m);
      mkdirSync(join(hidden, 'keys'), { mode: 0o755 });
      writeFileSync(join(hidden, 'keys', user), readFileSync(`${s.privateKeyFile}.pub`), { mode: 0o644 });

      const port = await freePort();
      const config = join(hidden, 'sshd_config'); // sshd reads its config as root
      writeFileSync(
        config,
        [
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          `HostKey ${join(s.stateDir, 'ssh_host_ed25519_key')}`,
          `PidFile ${join(hidden, 'sshd.pid')}`,
          `AuthorizedKeysFile ${join(hidden, 'keys', '%u')}`,
          `AllowUsers ${user}`,
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          // The test sshd's setting: its files sit under /tmp, which StrictModes would refuse (world-writable).
          'StrictModes no',
          'Subsystem sftp internal-sftp',
          'LogLevel INFO',
          '',
        ].join('\n'),
      );
      const knownHosts = join(hidden, 'known_hosts');
      const hostKey = readFileSync(join(s.stateDir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ');
      writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey[0]} ${hostKey[1]}\n`);

      let log = '';
      const daemon = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      daemon.stderr.setEncoding('utf8').on('data', (text: string) => (log += text));
      // It must be gone before its folder is removed: it may still write there while it exits.
      cleanups.push(
        () =>
          new Promise<void>((resolve) => {
            if (daemon.exitCode !== null || daemon.signalCode !== null) return resolve();
            daemon.once('exit', () => resolve());
            daemon.kill('SIGTERM');
            setTimeout(resolve, 5_000).unref();
          }),
      );
      await listening(port, daemon, () => log);

      const target = sshConfig({
        port,
        knownHostsFile: knownHosts,
        root: `~/.agentbox/auth-hint-${process.pid}`,
      });
      const error = (await openSandbox({ backend: 'ssh', config: target }).then(
        () => {
          throw new Error('expected AUTHENTICATION');
        },
        (e: unknown) => e,
      )) as AgentboxError;
      expect(error.code).toBe('AUTHENTICATION');
      expect(error.message).toContain('refused every authentication method given');
      for (const text of ['searchable by agentbox-a', 'mktemp -d', 'StrictModes', 'sshd log', 'sshd -E'])
        expect(error.message).toContain(text);
      // The server's side of the story is the one the hint points to.
      await new Promise((r) => setTimeout(r, 200));
      expect(log).toMatch(/Could not open user '?agentbox-a'? authorized keys .*Permission denied/);

      // Once the user may enter the directory, the very same key is accepted.
      chmodSync(hidden, 0o755);
      const sandbox = await openSandbox({ backend: 'ssh', config: { ...target, isolation: 'none' } });
      expect((await sandbox.exec('id -un')).stdout).toBe(`${user}\n`);
      await sandbox.close();
    },
    60_000,
  );
});
