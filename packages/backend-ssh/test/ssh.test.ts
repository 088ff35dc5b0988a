/**
 * What only the SSH backend promises: host keys verified (never accepted silently), typed
 * authentication failures, one reused connection that comes back after a drop, the policy it
 * cannot enforce refused before connecting, re-attach by id, cleanup on close, and a sweep of
 * what crashed sandboxes leave on the host.
 */
import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AgentboxError,
  AuthenticationError,
  openSandbox,
  type SandboxBackend,
  SandboxUnavailableError,
} from '@agentbox/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  HostKeyVerificationError,
  type SshConfig,
  SshConfigSchema,
  type SshSandbox,
  ssh,
  sweepSsh,
} from '../src/index.js';
import { fingerprintSha256, hostFieldMatches, knownHostsName, parseKnownHosts } from '../src/known-hosts.js';
import { scratchDir, sshCli, sshConfig, sshd } from './sshd.ts';

const exec = promisify(execFile);

// Every sandbox of this file lives under its own remote root, removed at the end.
const rootName = `ssh-test-${process.pid}-${Date.now().toString(36)}`;
const root = `~/.agentbox/${rootName}`;
const remoteRoot = (user?: string) => `/home/${user ?? sshd().users[0]}/.agentbox/${rootName}`;
afterAll(async () => {
  for (const user of sshd().users) await sshCli(`rm -rf ${remoteRoot(user)}`, user).catch(() => {});
});

const open = (config: Partial<SshConfig> = {}, extra: { id?: string; user?: string } = {}) =>
  openSandbox({ backend: 'ssh', id: extra.id, config: sshConfig({ root, ...config }, extra.user) });

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<AgentboxError> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) {
    await (outcome.value as SandboxBackend | undefined)?.close?.();
    throw new Error('expected a rejection, but the call succeeded');
  }
  expect(outcome.error).toBeInstanceOf(AgentboxError);
  return outcome.error as AgentboxError;
}

async function remoteExists(path: string, user?: string): Promise<boolean> {
  return (await sshCli(`test -e '${path}' && echo yes || echo no`, user)).trim() === 'yes';
}

/** Signal the sshd processes serving the client connection that uses local port `localPort`. */
async function killServerSide(localPort: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<number[]> {
  const { stdout } = await exec('ss', [
    '-Htnp',
    'state',
    'established',
    `( sport = :${sshd().port} and dport = :${localPort} )`,
  ]);
  const pids = [...stdout.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
  expect(pids.length, `no sshd process found serving local port ${localPort}: ${stdout}`).toBeGreaterThan(0);
  for (const pid of new Set(pids)) {
    try {
      process.kill(pid, signal);
    } catch (error) {
      // The session process exits by itself once its monitor is gone.
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
  return pids;
}

function serverPublicKey(kind: 'ed25519' | 'rsa'): string {
  return readFileSync(sshd().hostKeys[kind].publicKeyFile, 'utf8').split(' ').slice(0, 2).join(' ');
}

/** An ed25519 public key in known_hosts form that no server has. */
function strangerKey(): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const type = Buffer.from('ssh-ed25519');
  const blob = Buffer.concat([u32(type.length), type, u32(raw.length), raw]);
  return `ssh-ed25519 ${blob.toString('base64')}`;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

describe('known_hosts parsing', () => {
  it('matches plain, wildcard, negated, [host]:port and hashed host fields', async () => {
    expect(hostFieldMatches('example.com,10.0.0.1', 'example.com')).toBe(true);
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'a.example.com')).toBe(true);
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'bad.example.com')).toBe(false);
    expect(hostFieldMatches('[127.0.0.1]:2222', knownHostsName('127.0.0.1', 2222))).toBe(true);
    expect(hostFieldMatches('127.0.0.1', knownHostsName('127.0.0.1', 2222))).toBe(false);
    // A hashed entry as ssh-keygen -H writes it.
    const dir = scratchDir();
    const file = join(dir, 'known_hosts');
    writeFileSync(file, `[127.0.0.1]:2222 ${strangerKey()}\n`);
    await exec('ssh-keygen', ['-H', '-f', file]);
    const [entry] = parseKnownHosts(readFileSync(file, 'utf8'));
    expect(entry!.hosts.startsWith('|1|')).toBe(true);
    expect(hostFieldMatches(entry!.hosts, '[127.0.0.1]:2222')).toBe(true);
    expect(hostFieldMatches(entry!.hosts, '[127.0.0.1]:2223')).toBe(false);
  });

  it('skips comments and reads @revoked markers', () => {
    const entries = parseKnownHosts(`# comment\n\n@revoked * ${strangerKey()}\nhost ${strangerKey()}\n`);
    expect(entries.map((e) => e.marker)).toEqual(['revoked', undefined]);
  });

  it('prints fingerprints as ssh-keygen -lf does', () => {
    const [, base64] = serverPublicKey('ed25519').split(' ');
    expect(fingerprintSha256(Buffer.from(base64!, 'base64'))).toBe(sshd().hostKeys.ed25519.fingerprint);
  });
});

describe('host key verification', () => {
  it('refuses an unknown host key, and writes nothing', async () => {
    const knownHostsFile = join(scratchDir(), 'known_hosts');
    const error = await rejection(open({ knownHostsFile }));
    expect(error.code).toBe('AUTHENTICATION');
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toBeInstanceOf(HostKeyVerificationError);
    expect((error as HostKeyVerificationError).reason).toBe('unknown');
    expect(error.message).toContain(sshd().hostKeys.ed25519.fingerprint);
    expect(() => readFileSync(knownHostsFile)).toThrow();
  });

  it('refuses a changed host key, even with accept-new', async () => {
    const knownHostsFile = join(scratchDir(), 'known_hosts');
    writeFileSync(knownHostsFile, `[127.0.0.1]:${sshd().port} ${strangerKey()}\n`);
    for (const hostKeyPolicy of ['strict', 'accept-new'] as const) {
      const error = await rejection(open({ knownHostsFile, hostKeyPolicy }));
      expect(error.code).toBe('AUTHENTICATION');
      expect((error as HostKeyVerificationError).reason).toBe('changed');
    }
    expect(readFileSync(knownHostsFile, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('refuses a key marked @revoked', async () => {
    const knownHostsFile = join(scratchDir(), 'known_hosts');
    const line = `[127.0.0.1]:${sshd().port} ${serverPublicKey('ed25519')}`;
    writeFileSync(knownHostsFile, `${line}\n@revoked ${line}\n`);
    const error = await rejection(open({ knownHostsFile }));
    expect((error as HostKeyVerificationError).reason).toBe('revoked');
  });

  it('accept-new accepts an unknown host only when asked, and records its key', async () => {
    const knownHostsFile = join(scratchDir(), 'known_hosts');
    const sandbox = await open({ knownHostsFile, hostKeyPolicy: 'accept-new' });
    await sandbox.close();
    const lines = readFileSync(knownHostsFile, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith(`[127.0.0.1]:${sshd().port} `)).toBe(true);
    const [, type, key] = lines[0]!.split(' ');
    expect(fingerprintSha256(Buffer.from(key!, 'base64'))).toBe(
      type === 'ssh-rsa' ? sshd().hostKeys.rsa.fingerprint : sshd().hostKeys.ed25519.fingerprint,
    );
    // Now known: strict mode opens, and nothing more is appended.
    const again = await open({ knownHostsFile });
    await again.close();
    expect(readFileSync(knownHostsFile, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('accepts hashed known_hosts entries, and the RSA key when only that one is known', async () => {
    const knownHostsFile = join(scratchDir(), 'known_hosts');
    writeFileSync(knownHostsFile, `[127.0.0.1]:${sshd().port} ${serverPublicKey('rsa')}\n`);
    await exec('ssh-keygen', ['-H', '-f', knownHostsFile]);
    expect(readFileSync(knownHostsFile, 'utf8').startsWith('|1|')).toBe(true);
    const sandbox = await open({ knownHostsFile });
    expect((await sandbox.exec('echo ok')).stdout).toBe('ok\n');
    await sandbox.close();
  });

  it('a pinned fingerprint opens without known_hosts; a wrong one is refused', async () => {
    const knownHostsFile = join(scratchDir(), 'does-not-exist');
    const sandbox = await open({ knownHostsFile, hostKeyFingerprint: sshd().hostKeys.ed25519.fingerprint });
    expect((await sandbox.exec('echo pinned')).stdout).toBe('pinned\n');
    await sandbox.close();
    const wrong = fingerprintSha256(randomBytes(32));
    const error = await rejection(
      open({ knownHostsFile, hostKeyFingerprint: wrong, hostKeyPolicy: 'accept-new' }),
    );
    expect(error.code).toBe('AUTHENTICATION');
    expect((error as HostKeyVerificationError).reason).toBe('fingerprint-mismatch');
  });
});

describe('authentication', () => {
  it('logs in with a password, and with a key that has a passphrase', async () => {
    const s = sshd();
    for (const auth of [
      { type: 'password', password: s.password },
      { type: 'privateKey', path: s.passphraseKeyFile, passphrase: s.passphrase },
      { type: 'privateKey', key: readFileSync(s.privateKeyFile, 'utf8') },
    ] as const) {
      const sandbox = await open({ auth });
      expect((await sandbox.exec('id -un')).stdout).toBe(`${s.users[0]}\n`);
      await sandbox.close();
    }
  });

  it('a wrong password, a key the server does not know, or a wrong passphrase is AUTHENTICATION', async () => {
    const s = sshd();
    for (const auth of [
      { type: 'password', password: 'not-the-password' },
      { type: 'privateKey', path: s.unauthorizedKeyFile },
      { type: 'privateKey', path: s.passphraseKeyFile, passphrase: 'wrong passphrase' },
      [
        { type: 'privateKey', path: s.unauthorizedKeyFile },
        { type: 'password', password: 'still wrong' },
      ],
    ] as const) {
      const error = await rejection(open({ auth: auth as SshConfig['auth'] }));
      expect(error.code, JSON.stringify(auth)).toBe('AUTHENTICATION');
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error.backend).toBe('ssh');
    }
  });

  it('logs in through an ssh-agent', async () => {
    const dir = scratchDir();
    const socket = join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
      await exec('ssh-add', [sshd().privateKeyFile], { env: { ...process.env, SSH_AUTH_SOCK: socket } });
      await using sandbox = await open({ auth: { type: 'agent', socket } });
      expect((await sandbox.exec('echo agent')).stdout).toBe('agent\n');
    } finally {
      agent.kill('SIGTERM');
    }
  });

  it('tries the methods in order until one works', async () => {
    const s = sshd();
    const sandbox = await open({
      auth: [
        { type: 'privateKey', path: s.unauthorizedKeyFile },
        { type: 'password', password: s.password },
      ],
    });
    expect((await sandbox.exec('echo in')).stdout).toBe('in\n');
    await sandbox.close();
  });

  it('a server that does not answer is SANDBOX_UNAVAILABLE, not a hang', async () => {
    // A port nothing listens on: the probe binds it, then closes it.
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const error = await rejection(open({ port }));
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(error.retryable).toBe(true);
  });
});

describe('one connection, reconnected after a drop', () => {
  it('reuses one connection for commands, files and checkpoints', async () => {
    await using sandbox = (await open()) as SshSandbox;
    await Promise.all([sandbox.exec('true'), sandbox.writeFile('a.txt', 'a'), sandbox.exec('echo x')]);
    await sandbox.readFile('a.txt');
    await sandbox.checkpoint();
    expect(sandbox.connection.connects).toBe(1);
  });

  it('more commands at once than the session limit wait for a channel, and all complete', async () => {
    // The test sshd allows 64 sessions per connection; 80 at once makes it refuse some channels.
    for (const maxConcurrentCommands of [8, 200]) {
      await using sandbox = await open({ maxConcurrentCommands });
      const results = await Promise.all(
        Array.from({ length: 80 }, (_, i) =>
          sandbox.exec(['sh', '-c', 'sleep 0.2; echo "$1"', 'sh', String(i)]),
        ),
      );
      expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 80 }, (_, i) => `${i}\n`));
    }
  });

  it('a command in flight when the connection drops fails with SANDBOX_UNAVAILABLE; the next call reconnects', async () => {
    await using sandbox = (await open()) as SshSandbox;
    const mark = String(800_000 + Math.floor(Math.random() * 99_999));
    const handle = sandbox.spawn(['sh', '-c', `echo started; exec sleep ${mark}`]);
    for await (const chunk of handle.stdout) if (Buffer.from(chunk).toString().includes('started')) break;
    const started = Date.now();
    await killServerSide(sandbox.connection.localPort!);
    const error = await rejection(handle.wait());
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The next call opens a new connection and works.
    expect((await sandbox.exec('echo back')).stdout).toBe('back\n');
    expect(sandbox.connection.connects).toBe(2);
    // The command orphaned by the drop was killed on that next call.
    const left = await sandbox.exec(['sh', '-c', `ps -eo args | grep -c '^sleep ${mark}$'`]);
    expect(left.stdout.trim()).toBe('0');
  });

  it('an upload in flight when the connection drops fails with SANDBOX_UNAVAILABLE; the next call reconnects', async () => {
    await using sandbox = (await open()) as SshSandbox;
    const chunk = new Uint8Array(1024 * 1024).fill(7);
    async function* slowUpload() {
      for (let i = 0; i < 200; i++) {
        if (i === 8) await killServerSide(sandbox.connection.localPort!);
        yield chunk;
      }
    }
    const error = await rejection(sandbox.writeFile('big.bin', slowUpload()));
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(error.operation).toBe('writeFile');
    await sandbox.writeFile('small.txt', 'after the drop');
    expect(await sandbox.readTextFile('small.txt')).toBe('after the drop');
    expect(sandbox.connection.connects).toBe(2);
  });

  it('a connection that silently stops answering is given up by keepalive, not waited on forever', async () => {
    await using sandbox = (await open({ keepaliveIntervalMs: 250, keepaliveCountMax: 2 })) as SshSandbox;
    const handle = sandbox.spawn(['sh', '-c', 'echo started; exec sleep 30']);
    for await (const chunk of handle.stdout) if (Buffer.from(chunk).toString().includes('started')) break;
    // Frozen, not closed: no FIN, no RST, just silence.
    const frozen = await killServerSide(sandbox.connection.localPort!, 'SIGSTOP');
    try {
      const started = Date.now();
      const error = await rejection(handle.wait());
      expect(error.code).toBe('SANDBOX_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const pid of frozen) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    expect((await sandbox.exec('echo thawed')).stdout).toBe('thawed\n');
  });

  it('a connection that dropped while idle is replaced on the next call', async () => {
    await using sandbox = (await open()) as SshSandbox;
    await killServerSide(sandbox.connection.localPort!);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await sandbox.exec('echo again')).stdout).toBe('again\n');
    expect(await sandbox.readTextFile('.', {}).catch((e: AgentboxError) => e.code)).toBe('IS_A_DIRECTORY');
    expect(sandbox.connection.connects).toBe(2);
  });

  it('reaches the host through a jump host', async () => {
    const s = sshd();
    await using sandbox = await open({
      jump: {
        host: s.host,
        port: s.port,
        user: s.users[1],
        auth: { type: 'privateKey', path: s.privateKeyFile },
        knownHostsFile: s.knownHostsFile,
      },
    });
    expect((await sandbox.exec('id -un')).stdout).toBe(`${s.users[0]}\n`);
  });
});

describe('commands', () => {
  it('output stays byte-exact when the login shell prints on startup', async () => {
    const user = sshd().users[1];
    const rc = `/home/${user}/.bashrc`;
    await sshCli(
      `cp ${rc} ${rc}.agentbox-test 2>/dev/null; printf 'echo noise; echo noise >&2; printf partial\n' > ${rc}`,
      user,
    );
    try {
      await using sandbox = await open({}, { user });
      const result = await sandbox.exec(['sh', '-c', 'printf out; printf err >&2']);
      expect([result.stdout, result.stderr]).toEqual(['out', 'err']);
    } finally {
      await sshCli(`rm -f ${rc}; mv ${rc}.agentbox-test ${rc} 2>/dev/null; true`, user);
    }
  });

  it('runs a program whose name contains "=" and passes env values verbatim', async () => {
    await using sandbox = await open();
    await sandbox.writeFile('a=b', '#!/bin/sh\necho "ran $0 with $V"\n', { mode: 0o755 });
    const result = await sandbox.exec(['./a=b'], { env: { V: 'it\'s "quoted"\n$HOME `x`' } });
    expect(result.stdout).toBe(`ran ./a=b with it's "quoted"\n$HOME \`x\`\n`);
  });
});

describe('policy', () => {
  it('a strict policy asking for container controls refuses to open, before connecting', async () => {
    // Port 1 would fail to connect: the refusal must come first.
    for (const policy of [
      { readOnlyRoot: true },
      { limits: { memoryMiB: 512 } },
      { network: { mode: 'none' as const } },
    ]) {
      // Without a jail (isolation 'none'): a jail, checked once connected, would enforce the first and last.
      const error = await rejection(
        openSandbox({
          backend: 'ssh',
          config: sshConfig({ root, port: 1, isolation: 'none' }),
          policy,
          strict: true,
        }),
      );
      expect(error.code).toBe('POLICY_NOT_ENFORCEABLE');
      expect(error.backend).toBe('ssh');
    }
    // No jail sets a memory limit: refused before connecting whatever the isolation.
    const error = await rejection(
      openSandbox({
        backend: 'ssh',
        config: sshConfig({ root, port: 1 }),
        policy: { limits: { memoryMiB: 512 } },
      }),
    );
    expect(error.code).toBe('POLICY_NOT_ENFORCEABLE');
  });

  it("reports what SSH enforces and what it cannot (isolation 'none'); non-root and labels are enforced", async () => {
    await using sandbox = await openSandbox({
      backend: 'ssh',
      config: sshConfig({ root, isolation: 'none' }),
      policy: { nonRootUser: true, labels: { team: 'agents' } },
    });
    expect(sandbox.capabilities.isolation).toBe('remote-host');
    expect(sandbox.capabilities.nonRootUser).toBe(true);
    // One login user for every sandbox and no jail: they are not isolated from each other.
    expect(sandbox.enforcement.isolation.status).toBe('not-supported');
    expect(sandbox.enforcement.nonRootUser.status).toBe('enforced');
    expect(sandbox.enforcement.labels.status).toBe('enforced');
    for (const control of [
      'readOnlyRoot',
      'tmp',
      'limits.pids',
      'limits.memoryMiB',
      'dropCapabilities',
      'network',
    ] as const) {
      expect(sandbox.enforcement[control].status, control).toBe('not-supported');
      expect(sandbox.enforcement[control].detail.length, control).toBeGreaterThan(10);
    }
    const meta = JSON.parse(await sshCli(`cat ${(sandbox as SshSandbox).remoteDir}/sandbox.json`));
    expect(meta.labels).toEqual({ team: 'agents' });
  });

  it('reports what a bubblewrap jail on the host enforces, and what it still cannot', async () => {
    await using sandbox = (await openSandbox({
      backend: 'ssh',
      config: sshConfig({ root }),
      policy: { network: { mode: 'none' } },
    })) as SshSandbox;
    if (!sandbox.jail) return expect(sandbox.enforcement.isolation.status).toBe('not-supported');
    for (const control of [
      'isolation',
      'readOnlyRoot',
      'dropCapabilities',
      'noNewPrivileges',
      'network',
    ] as const)
      expect(sandbox.enforcement[control].status, control).toBe('enforced');
    for (const control of ['tmp', 'limits.pids', 'limits.memoryMiB', 'mounts'] as const)
      expect(sandbox.enforcement[control].status, control).toBe('not-supported');
    expect((await sandbox.exec('touch /etc/agentbox-probe')).exitCode).not.toBe(0);
  });

  it('strict: false opens with the unenforced controls reported', async () => {
    await using sandbox = await openSandbox({
      backend: 'ssh',
      config: sshConfig({ root, isolation: 'none' }),
      policy: { readOnlyRoot: true },
      strict: false,
    });
    expect(sandbox.enforcement.readOnlyRoot.status).toBe('not-supported');
  });
});

describe('workspace lifecycle', () => {
  it('the workspace is a private 0700 directory, created on open and removed on close', async () => {
    const sandbox = (await open()) as SshSandbox;
    expect(sandbox.workdir).toBe(`${remoteRoot()}/${sandbox.id}/workspace`);
    expect((await sandbox.exec(['stat', '-c', '%a', '.', '..'])).stdout).toBe('700\n700\n');
    expect((await sandbox.exec('pwd')).stdout).toBe(`${sandbox.workdir}\n`);
    expect(await remoteExists(sandbox.workdir)).toBe(true);
    await sandbox.close();
    expect(await remoteExists(sandbox.remoteDir)).toBe(false);
  });

  it('another login user cannot read the workspace (the 0700 directories, without a jail)', async () => {
    await using mine = await open({ isolation: 'none' });
    await using theirs = await open({ isolation: 'none' }, { user: sshd().users[1] });
    await mine.writeFile('secret.txt', 'mine only');
    const path = `${mine.workdir}/secret.txt`;
    expect((await theirs.readFile(path).catch((e: AgentboxError) => e)) as AgentboxError).toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    const cat = await theirs.exec(['cat', path]);
    expect(cat.exitCode).not.toBe(0);
    expect(cat.stdout).toBe('');
  });

  it('keep: true leaves the workspace and its checkpoints; re-attaching by id finds them', async () => {
    const id = `reattach-${randomBytes(4).toString('hex')}`;
    const first = await open({ keep: true }, { id });
    await first.writeFile('notes.txt', 'version 1');
    const cp = await first.checkpoint({ label: 'v1' });
    await first.writeFile('notes.txt', 'version 2');
    await first.close();
    expect(await remoteExists(`${remoteRoot()}/${id}/workspace/notes.txt`)).toBe(true);

    const second = await open({}, { id });
    expect(second.workdir).toBe(first.workdir);
    expect(await second.readTextFile('notes.txt')).toBe('version 2');
    expect((await second.listCheckpoints()).map((c) => [c.id, c.label])).toEqual([[cp.id, 'v1']]);
    await second.rollback(cp.id);
    expect(await second.readTextFile('notes.txt')).toBe('version 1');
    await second.close();
    expect(await remoteExists(`${remoteRoot()}/${id}`)).toBe(false);
  });

  it('a new sandbox never takes over an existing directory it was not asked to re-attach to', async () => {
    const id = `taken-${randomBytes(4).toString('hex')}`;
    const first = await open({ keep: true }, { id });
    await first.close();
    // Same id through the backend's open without idGiven is not reachable from openSandbox; an id given re-attaches.
    const again = await open({}, { id });
    expect(again.id).toBe(id);
    await again.close();
  });
});

describe('sweep', () => {
  const config = sshConfig({ root });

  it('lists a left-behind sandbox and what still runs in it; the sweep kills that and removes the directory', async () => {
    const id = `leaked-${randomBytes(4).toString('hex')}`;
    // Left behind: kept on close, with a process that left the command's group still working in it
    // (without a jail: a jail's end would take that process with it).
    const sandbox = await open({ keep: true, isolation: 'none' }, { id });
    const started = await sandbox.exec('setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!');
    const pid = Number(started.stdout.trim());
    await sandbox.close();
    // Alive: present and not a zombie (an orphan's reaper may be slow, or absent in a container).
    const alive = async () =>
      (await sshCli(`s=$(ps -o stat= -p ${pid}) && [ "\${s#Z}" = "$s" ] && echo yes || echo no`)).trim() ===
      'yes';
    expect(await alive()).toBe(true);

    const [listed, ...others] = await sweepSsh({ config, sandboxId: id, dryRun: true });
    expect(others).toEqual([]);
    expect(listed).toMatchObject({ id, path: `${remoteRoot()}/${id}`, removed: false });
    expect(listed!.processes).toContain(pid);
    expect(Date.now() - Date.parse(listed!.createdAt!)).toBeLessThan(60_000);
    expect(await alive()).toBe(true);

    const [swept] = await sweepSsh({ config, sandboxId: id });
    expect(swept).toMatchObject({ id, removed: true });
    expect(await remoteExists(`${remoteRoot()}/${id}`)).toBe(false);
    expect(await alive()).toBe(false);
  });

  it('the definition sweeps through sweepSsh, and its doctor checks the host', async () => {
    const parsed = SshConfigSchema.parse(config);
    const sandbox = await open({ keep: true });
    await sandbox.close();
    const report = await ssh.sweep!({ config: parsed, dryRun: true, ids: [sandbox.id] });
    expect(report.location).toMatch(new RegExp(`^under ${root.replace('.', '\\.')} on ${sshd().users[0]}@`));
    expect(report.sandboxes).toMatchObject([
      {
        id: sandbox.id,
        removed: false,
        resources: [{ type: 'directory', name: `${remoteRoot()}/${sandbox.id}` }],
      },
    ]);
    expect((await ssh.sweep!({ config: parsed, dryRun: false, ids: [sandbox.id] })).sandboxes).toMatchObject([
      { id: sandbox.id, removed: true },
    ]);
    expect(await remoteExists(`${remoteRoot()}/${sandbox.id}`)).toBe(false);

    const doctor = await ssh.doctor!({ config: parsed });
    expect(doctor.ok).toBe(true);
    expect(doctor.checks.map((c) => c.name)).toEqual([
      'connection',
      'sh',
      'setsid',
      '/proc',
      'egress allowlist',
      'root directory',
    ]);
    // The test host has bubblewrap and Node.js (the egress tests need them too).
    expect(doctor.checks.find((c) => c.name === 'egress allowlist')?.detail).toMatch(/^available: /);
    expect(doctor.controls.nonRootUser?.status).toBe('enforced');
    const refused = await ssh.doctor!({ config: { ...parsed, port: 1 } });
    expect(refused.ok).toBe(false);
    expect(refused.checks).toMatchObject([{ name: 'connection', ok: false }]);
  });

  it('takes only what is old enough and carries the labels asked for', async () => {
    const tag = randomBytes(4).toString('hex');
    await using sandbox = await openSandbox({
      backend: 'ssh',
      config,
      policy: { labels: { 'sweep-test': tag } },
    });
    const mine = { config, labels: { 'sweep-test': tag }, dryRun: true };
    expect((await sweepSsh(mine)).map((s) => s.id)).toEqual([sandbox.id]);
    expect(await sweepSsh({ ...mine, labels: { 'sweep-test': 'another' } })).toEqual([]);
    expect(await sweepSsh({ ...mine, olderThanMs: 3_600_000 })).toEqual([]);
    // An hour from now it is old enough.
    expect((await sweepSsh({ ...mine, olderThanMs: 3_600_000, now: Date.now() + 3_600_001 })).length).toBe(1);
    // A live sandbox the filters keep out is untouched by a real sweep.
    await sweepSsh({ config, labels: { 'sweep-test': tag }, olderThanMs: 3_600_000 });
    expect((await sandbox.exec('echo still here')).stdout).toBe('still here\n');
  });

  it('leaves alone what this backend did not create, even when it looks like a sandbox', async () => {
    const base = remoteRoot();
    await sshCli(
      `mkdir -p ${base}/lookalike/workspace ${base}/renamed/workspace && echo '{"id":"elsewhere"}' > ${base}/renamed/sandbox.json`,
    );
    const ids = (await sweepSsh({ config, dryRun: true })).map((s) => s.id);
    expect(ids).not.toContain('lookalike');
    expect(ids).not.toContain('renamed');
    expect(await sweepSsh({ config, sandboxId: 'lookalike' })).toEqual([]);
    expect(await sweepSsh({ config, sandboxId: 'renamed' })).toEqual([]);
    expect(await remoteExists(`${base}/lookalike/workspace`)).toBe(true);
    expect(await remoteExists(`${base}/renamed/workspace`)).toBe(true);
  });

  it("leaves another user's sandbox under a shared root alone unless all: true", async () => {
    const [me, other] = sshd().users as [string, string];
    const shared = `/tmp/agentbox-shared-${rootName}`;
    try {
      await sshCli(`mkdir -m 1777 ${shared}`, me);
      // The other user's sandbox, readable by everyone (so listing it is possible).
      await sshCli(
        `mkdir -m 755 ${shared}/theirs ${shared}/theirs/workspace && echo '{"id":"theirs"}' > ${shared}/theirs/sandbox.json`,
        other,
      );
      const mine = await open({ root: shared, keep: true });
      await mine.close();
      const sharedConfig = sshConfig({ root: shared });
      expect((await sweepSsh({ config: sharedConfig, dryRun: true })).map((s) => s.id)).toEqual([mine.id]);
      const all = await sweepSsh({ config: sharedConfig, dryRun: true, all: true });
      expect(all.map((s) => s.id).sort()).toEqual([mine.id, 'theirs'].sort());
      const swept = await ssh.sweep!({ config: SshConfigSchema.parse(sharedConfig), dryRun: false });
      expect(swept.sandboxes).toMatchObject([{ id: mine.id, removed: true }]);
      expect(await remoteExists(`${shared}/theirs/workspace`)).toBe(true);
    } finally {
      await sshCli(`rm -rf ${shared}/theirs`, other).catch(() => {});
      await sshCli(`rm -rf ${shared}`, me).catch(() => {});
    }
  });

  it('a bad config is a typed INVALID_ARGUMENT naming the field, before any connection', async () => {
    const error = await rejection(sweepSsh({ config: { ...config, port: -1 } }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('port');
  });
});
