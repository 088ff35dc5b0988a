/**
 * SSH backend, against the private test sshd (scripts/provision-sshd.sh, started if needed):
 * a small exec (fast path: a session already open on the connection) vs a bare ssh2 exec
 * channel on the same open connection, vs the `ssh` CLI through a ControlMaster socket and vs
 * the backend's own plain path (`fastPath: false`); 1,000 small commands from 4 concurrent
 * callers on one sandbox, fast path vs plain path; a 100 MB upload and download vs `scp` and
 * `sftp`; checkpoints of a 2,000-file tree vs `cp -a` of it on the host.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SshSandbox } from '@agentbox/backend-ssh';
import { openSandbox } from '@agentbox/core';
import '@agentbox/backend-ssh';
import { report, skip, timeMs } from './harness.js';

const sh = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');

interface SshdState {
  host: string;
  port: number;
  users: string[];
  knownHostsFile: string;
  privateKeyFile: string;
}

function provision(): SshdState | undefined {
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

    // exec `true`: interleaved so machine noise hits all three alike.
    const { client } = await sb.connection.link();
    const bare = () =>
      new Promise<void>((resolve, reject) =>
        client.exec('true', (err, ch) => {
          if (err) return reject(err);
          ch.resume();
          ch.stderr.resume();
          ch.once('close', () => resolve());
        }),
      );
    const viaCli = () => sh('ssh', [...cli, '-p', String(s.port), target, 'true']);
    const ours: number[] = [];
    const bareTimes: number[] = [];
    const cliTimes: number[] = [];
    const plainTimes: number[] = [];
    for (let i = 0; i < 10; i++) {
      await Promise.all([sb.exec(['true']), bare(), viaCli()]);
      await plainSb.exec(['true']);
    }
    const before = sb.sessions.stats;
    for (let i = 0; i < 200; i++) {
      ours.push(await timeMs(() => sb.exec(['true'])));
      bareTimes.push(await timeMs(bare));
      cliTimes.push(await timeMs(viaCli));
      plainTimes.push(await timeMs(() => plainSb.exec(['true'])));
    }
    const onSession = sb.sessions.stats.session - before.session;
    if (onSession !== 200) console.error(`ssh: only ${onSession} of 200 timed execs took the session path`);
    const exec = { bench: 'exec true', backend: 'ssh', value: median(ours), unit: 'ms' } as const;
    report({
      ...exec,
      baseline: 'bare ssh2 exec channel, open connection',
      baselineValue: median(bareTimes),
    });
    report({ ...exec, baseline: 'ssh CLI via ControlMaster', baselineValue: median(cliTimes) });
    report({
      ...exec,
      baseline: 'this backend, plain path (fastPath: false)',
      baselineValue: median(plainTimes),
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

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
