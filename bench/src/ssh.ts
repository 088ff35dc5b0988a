/**
 * SSH backend, against the private test sshd (scripts/provision-sshd.sh, started if needed):
 * a small exec (fast path: a session already open on the connection) vs a fresh ssh2 exec
 * channel on an open connection (tuned as this backend opens it, and with ssh2's defaults), vs
 * the open-shell floor and the echo floor on an open channel, vs the `ssh` CLI through a
 * ControlMaster socket and vs the backend's own plain path (`fastPath: false`); 1,000 small
 * commands from 4 concurrent callers on one sandbox, fast path vs plain path; a 100 MB upload
 * and download vs `scp` and `sftp`; checkpoints of a 2,000-file tree vs `cp -a` of it on the host.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SshSandbox } from '@agentbox/backend-ssh';
import { loadBackend, openSandbox } from '@agentbox/core';
import { Client, type ClientChannel } from 'ssh2';
import { type Rounds, report, rounds, skip, timeMs } from './harness.js';

const sh = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');

export interface SshdState {
  host: string;
  port: number;
  users: string[];
  knownHostsFile: string;
  privateKeyFile: string;
  hostKeys: Record<string, { fingerprint: string }>;
}

export function provision(): SshdState | undefined {
  try {
    execFileSync('bash', [join(repo, 'scripts/provision-sshd.sh')], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } catch (error) {
    skip('ssh', `the test sshd could not be started: ${(error as Error).message}`);
    return undefined;
  }
  const dir = process.env.AGENTBOX_SSHD_DIR ?? join(repo, '.tmp/sshd');
  return JSON.parse(execFileSync('cat', [join(dir, 'state.json')], { encoding: 'utf8' })) as SshdState;
}

export async function run(): Promise<void> {
  const s = provision();
  if (!s) return;
  await loadBackend('ssh');
  const user = s.users[0]!;
  const local = await mkdtemp(join(tmpdir(), 'agentbox-bench-ssh-'));
  const control = join(local, 'cm');
  const cli = [
    '-o',
    'BatchMode=yes',
    '-o',
    `UserKnownHostsFile=${s.knownHostsFile}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `ControlPath=${control}`,
    '-i',
    s.privateKeyFile,
  ];
  const target = `${user}@${s.host}`;
  await sh('ssh', [
    ...cli,
    '-p',
    String(s.port),
    '-o',
    'ControlMaster=yes',
    '-o',
    'ControlPersist=120',
    '-fN',
    target,
  ]);
  const config = {
    host: s.host,
    port: s.port,
    user,
    auth: { type: 'privateKey' as const, path: s.privateKeyFile },
    knownHostsFile: s.knownHostsFile,
    root: '~/.agentbox/bench',
  };
  try {
    await using sb = (await openSandbox({ backend: 'ssh', config })) as SshSandbox;
    // The same backend with every command on its own exec channel.
    await using plainSb = (await openSandbox({
      backend: 'ssh',
      config: { ...config, fastPath: false },
    })) as SshSandbox;

    // exec `true`, interleaved with its baselines so machine noise hits all alike.
    const { client } = await sb.connection.link();
    // The same connection without TCP_NODELAY, as a bare `new Client()` opens it.
    const defaults = await connectDefaults(s, user);
    const floor = await openShellChannel(client);
    const echo = await openEchoChannel(client);
    const viaCli = () => sh('ssh', [...cli, '-p', String(s.port), target, 'true']);
    const runs = {
      ours: [] as number[],
      tuned: [] as number[],
      defaults: [] as number[],
      cli: [] as number[],
      plain: [] as number[],
      floor: [] as number[],
      echo: [] as number[],
    };
    const round = async (timed: boolean) => {
      const add = async (name: keyof typeof runs, fn: () => Promise<unknown>) => {
        const ms = await timeMs(fn);
        if (timed) runs[name].push(ms);
      };
      await add('ours', () => sb.exec(['true']));
      await add('tuned', () => freshChannel(client));
      await add('floor', floor.round);
      await add('echo', echo.round);
      await add('plain', () => plainSb.exec(['true']));
    };
    for (let i = 0; i < 10; i++) await round(false);
    const before = sb.sessions.stats;
    for (let i = 0; i < 200; i++) await round(true);
    const onSession = sb.sessions.stats.session - before.session;
    if (onSession !== 200) console.error(`ssh: only ${onSession} of 200 timed execs took the session path`);
    // The slow ones, fewer times (a fresh channel on a default connection waits out delayed ACKs).
    for (let i = 0; i < 30; i++) {
      runs.defaults.push(await timeMs(() => freshChannel(defaults)));
      runs.cli.push(await timeMs(viaCli));
    }
    defaults.end();
    floor.close();
    echo.close();
    const exec = { bench: 'exec true', backend: 'ssh', value: median(runs.ours), unit: 'ms' } as const;
    report({
      ...exec,
      baseline: 'fresh ssh2 exec channel, open connection with TCP_NODELAY (as this backend opens it)',
      baselineValue: median(runs.tuned),
    });
    report({
      ...exec,
      baseline: 'fresh ssh2 exec channel, open connection with ssh2 defaults (Nagle on)',
      baselineValue: median(runs.defaults),
    });
    report({
      ...exec,
      baseline: 'open-shell floor: `setsid sh -c true` written raw to a shell on an open channel',
      baselineValue: median(runs.floor),
    });
    report({
      ...exec,
      baseline: 'echo floor: one line through `cat` on an open channel, no process started',
      baselineValue: median(runs.echo),
    });
    report({ ...exec, baseline: 'ssh CLI via ControlMaster', baselineValue: median(runs.cli) });
    report({
      ...exec,
      baseline: 'this backend, plain path (fastPath: false)',
      baselineValue: median(runs.plain),
    });

    // 1,000 small commands from 4 concurrent callers on one sandbox, fast path vs plain path.
    const burst = async (sandbox: SshSandbox): Promise<number> => {
      const callers = 4;
      const total = 1_000;
      const caller = async (c: number) => {
        for (let i = c; i < total; i += callers) {
          const r = await sandbox.exec(['echo', String(i)]);
          if (r.stdout !== `${i}\n`)
            throw new Error(`wrong output for command ${i}: ${JSON.stringify(r.stdout)}`);
        }
      };
      // Warm-up: let the pool grow to the callers' concurrency.
      for (let i = 0; i < 5; i++)
        await Promise.all(Array.from({ length: callers }, () => sandbox.exec(['true'])));
      const ms = await timeMs(() => Promise.all(Array.from({ length: callers }, (_, c) => caller(c))));
      return total / (ms / 1000);
    };
    const burstBefore = sb.sessions.stats;
    const fastOps = await burst(sb);
    const burstSession = sb.sessions.stats.session - burstBefore.session;
    const plainOps = await burst(plainSb);
    console.error(`ssh: burst on the fast path: ${burstSession} of 1,020 commands took the session path`);
    report({
      bench: '1,000 small commands, 4 callers',
      backend: 'ssh',
      value: fastOps,
      unit: 'ops/s',
      baseline: 'this backend, plain path (fastPath: false)',
      baselineValue: plainOps,
    });

    // 100 MB upload and download.
    const size = 100 * 1024 * 1024;
    const file = join(local, 'payload.bin');
    await writeFile(file, randomBytes(size));
    const remote = `${sb.workdir}/payload.bin`;
    const mb = size / 1e6;
    const upload = await timeMs(() => sb.writeFile('payload.bin', createReadStream(file)));
    const scpUp = await timeMs(() =>
      sh('scp', [...cli, '-q', '-P', String(s.port), file, `${target}:${remote}.scp`]),
    );
    const batch = join(local, 'batch');
    await writeFile(batch, `put ${file} ${remote}.sftp\n`);
    const sftpPut = await timeMs(() => sh('sftp', [...cli, '-q', '-P', String(s.port), '-b', batch, target]));
    const { sftp } = await sb.connection.sftp();
    const fastPut = await timeMs(
      () =>
        new Promise<void>((resolve, reject) =>
          sftp.fastPut(file, `${remote}.fastput`, (err) => (err ? reject(err) : resolve())),
        ),
    );
    const up = { bench: 'upload 100 MB', backend: 'ssh', value: mb / (upload / 1000), unit: 'MB/s' } as const;
    report({
      ...up,
      baseline: 'bare ssh2 sftp.fastPut, open connection',
      baselineValue: mb / (fastPut / 1000),
    });
    report({ ...up, baseline: 'scp', baselineValue: mb / (scpUp / 1000) });
    report({ ...up, baseline: 'sftp put', baselineValue: mb / (sftpPut / 1000) });

    const download = await timeMs(() => sb.readFile('payload.bin', { maxBytes: size }));
    await writeFile(batch, `get ${remote} ${join(local, 'got.bin')}\n`);
    const sftpGet = await timeMs(() => sh('sftp', [...cli, '-q', '-P', String(s.port), '-b', batch, target]));
    report({
      bench: 'download 100 MB',
      backend: 'ssh',
      value: mb / (download / 1000),
      unit: 'MB/s',
      baseline: 'sftp get',
      baselineValue: mb / (sftpGet / 1000),
    });

    // Checkpoints of a 2,000-file tree vs `cp -a` of the tree on the host.
    const tree =
      'mkdir -p tree && cd tree && d=0; while [ $d -lt 20 ]; do mkdir d$d; f=0; ' +
      'while [ $f -lt 100 ]; do echo "file $d/$f" > d$d/f$f; f=$((f+1)); done; d=$((d+1)); done';
    {
      await using cb = await openSandbox({ backend: 'ssh', config });
      await cb.exec(tree);
      const copyMs = await timeMs(() => cb.exec('cp -a tree ../tree-copy && rm -rf ../tree-copy'));
      await new Promise((resolve) => setTimeout(resolve, 2_500)); // past the incremental store's racy window
      const firstMs = await timeMs(() => cb.checkpoint());
      const first = (await cb.listCheckpoints())[0]!;
      await cb.exec('echo changed >> tree/d7/f7');
      const secondMs = await timeMs(() => cb.checkpoint());
      await cb.exec('echo again >> tree/d8/f8 && rm tree/d9/f9');
      const rollbackMs = await timeMs(() => cb.rollback(first));
      const base = {
        backend: 'ssh',
        unit: 'ms',
        baseline: 'cp -a of the tree on the host',
      } as const;
      report({ ...base, bench: 'first checkpoint, 2k files', value: firstMs, baselineValue: copyMs });
      report({ ...base, bench: 'checkpoint 2k files, 1 changed', value: secondMs, baselineValue: copyMs });
      report({ ...base, bench: 'rollback 2k files, 2 changed', value: rollbackMs, baselineValue: copyMs });
    }
  } finally {
    await sh('ssh', [...cli, '-p', String(s.port), '-O', 'exit', target]).catch(() => {});
    await rm(local, { recursive: true, force: true });
  }
}

/** One fresh exec channel of `true` on an open connection, read to its close. */
function freshChannel(client: Client): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    client.exec('true', (err, ch) => {
      if (err) return reject(err);
      ch.resume();
      ch.stderr.resume();
      ch.once('close', () => resolve());
    }),
  );
}

/** A second connection to the same server, opened the way a bare `new Client()` opens it. */
function connectDefaults(s: SshdState, user: string): Promise<Client> {
  const c = new Client();
  return new Promise<Client>((resolve, reject) => {
    c.once('ready', () => resolve(c));
    c.once('error', reject);
    c.connect({
      host: s.host,
      port: s.port,
      username: user,
      privateKey: readFileSync(s.privateKeyFile),
      // Checked against the test server's own keys, as the backend does through known_hosts.
      hostVerifier: (key: Buffer) =>
        Object.values(s.hostKeys).some(
          (k) =>
            k.fingerprint ===
            `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`,
        ),
    });
  });
}

/** A channel kept open running `command`, for rounds of `line(n)` answered by `done-n`. */
async function openRoundChannel(
  client: Client,
  command: string,
  line: (n: number) => string,
): Promise<Rounds> {
  const ch = await new Promise<ClientChannel>((resolve, reject) =>
    client.exec(command, (err, channel) => (err ? reject(err) : resolve(channel))),
  );
  ch.stderr.resume();
  return rounds(ch, line);
}

/** The floor: the command as its own session and process group, from a shell already open. */
function openShellChannel(client: Client) {
  return openRoundChannel(client, 'sh', (n) => `setsid sh -c true; echo done-${n}\n`);
}

/** The least any per-command mechanism can cost on this link: a line echoed back, no process started. */
function openEchoChannel(client: Client) {
  return openRoundChannel(client, 'cat', (n) => `done-${n}\n`);
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
