/**
 * Micro-benchmark of one small exec through a session, beside the raw primitives it wraps,
 * measured in the same run, interleaved, medians of rounds:
 *
 *   floor    `setsid sh -c true` written to an already-open shell, its completion read back
 *   session  sandbox.exec('true') through a SessionPool (core's exec engine included)
 *   plain    sandbox.exec('true') through the plain path of the same transport
 *
 * Each table twice: back to back, and with 5 ms between commands as an agent spaces them
 * (a session starts the next command's shell while idle, so that is where it gains most).
 * Transports: local (child_process pipes); `docker exec -i` streams into a busybox-only
 * container when a Docker daemon and the image agentbox/busybox:test are there; OpenSSH
 * channels on one multiplexed connection when the test sshd (scripts/provision-sshd.sh) runs.
 *
 *   npx tsx packages/core/test/session.bench.ts [rounds]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerCliExec, SessionTestSandbox, spawnPlain } from './session-local.js';

const ROUNDS = Number(process.argv[2] ?? 15);
const PER_ROUND = 30;

/** A shell kept open; `run` writes one line and waits for its end marker on stdout. */
function openShell(argv: readonly string[]): {
  run(cmd: string): Promise<void>;
  close(): void;
  child: ChildProcess;
} {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'pipe', env: {} });
  let seen = '';
  let want = '';
  let wake: (() => void) | undefined;
  child.stderr!.resume();
  child.stdout!.on('data', (data: Buffer) => {
    seen += data.toString('latin1');
    if (want && seen.includes(want)) {
      seen = '';
      want = '';
      wake?.();
    }
  });
  let n = 0;
  return {
    child,
    run(cmd) {
      want = `done-${++n}\n`;
      const done = new Promise<void>((resolve) => {
        wake = resolve;
      });
      child.stdin!.write(`${cmd}; echo done-${n}\n`);
      return done;
    },
    close() {
      child.stdin!.end();
    },
  };
}

interface Case {
  name: string;
  once(): Promise<unknown>;
  samples: number[];
}

const GAP_MS = 5;

/**
 * Median per-command latency. With `gapMs`, commands are spaced as an agent spaces them (it
 * thinks between commands) and only the command itself is timed.
 */
async function measure(cases: Case[], perRound = PER_ROUND, gapMs = 0): Promise<Map<string, number>> {
  for (const c of cases) for (let i = 0; i < 10; i++) await c.once(); // warm up
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) {
      let total = 0;
      for (let i = 0; i < perRound; i++) {
        if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
        const started = performance.now();
        await c.once();
        total += performance.now() - started;
      }
      c.samples.push(total / perRound);
    }
  }
  const medians = new Map<string, number>();
  for (const c of cases) {
    const sorted = [...c.samples].sort((a, b) => a - b);
    medians.set(c.name, sorted[Math.floor(sorted.length / 2)]!);
    c.samples = [];
  }
  return medians;
}

function report(
  title: string,
  medians: Map<string, number>,
  floorName: string,
  perRound: number,
  gapMs = 0,
): void {
  const floor = medians.get(floorName)!;
  const spacing = gapMs > 0 ? `${gapMs} ms apart, as an agent thinks between commands` : 'back to back';
  console.log(`\n${title}: median ms per command, ${spacing} (${ROUNDS} rounds of ${perRound})`);
  for (const [name, ms] of medians)
    console.log(`  ${name.padEnd(50)} ${ms.toFixed(3).padStart(8)} ms   ${(ms / floor).toFixed(2)}x floor`);
}

/** Both spacings, one table each. */
async function measureAndReport(title: string, cases: Case[], perRound: number): Promise<void> {
  report(title, await measure(cases, perRound), cases[0]!.name, perRound);
  report(title, await measure(cases, perRound, GAP_MS), cases[0]!.name, perRound, GAP_MS);
}

async function local(): Promise<void> {
  const fast = await SessionTestSandbox.create();
  const plain = await SessionTestSandbox.create({ pool: { enabled: false } });
  await fast.sessions.warm();
  const raw = openShell(['sh']);
  const rawBusybox = openShell(['/bin/busybox', 'sh']);
  const busybox = await SessionTestSandbox.create({ shell: ['/bin/busybox', 'sh'] });
  await busybox.sessions.warm();
  const cases: Case[] = [
    { name: 'floor: setsid sh -c true on an open sh', once: () => raw.run('setsid sh -c true'), samples: [] },
    { name: 'session: exec("true") (dash runner)', once: () => fast.exec('true'), samples: [] },
    { name: 'session: exec(["true"]) (no shell)', once: () => fast.exec(['true']), samples: [] },
    {
      name: 'floor: same on an open busybox sh',
      once: () => rawBusybox.run('setsid sh -c true'),
      samples: [],
    },
    { name: 'session: exec("true") (busybox runner)', once: () => busybox.exec('true'), samples: [] },
    { name: 'plain: exec("true") (child_process.spawn)', once: () => plain.exec('true'), samples: [] },
  ];
  await measureAndReport('local', cases, PER_ROUND);
  if (fast.sessions.stats.plain > 0) console.log('  (!) some session commands took the plain path');
  raw.close();
  rawBusybox.close();
  await Promise.all([fast.close(), plain.close(), busybox.close()]);
}

function dockerReady(image: string): boolean {
  try {
    execFileSync('docker', ['image', 'inspect', image], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function docker(): Promise<void> {
  const image = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';
  if (!dockerReady(image)) {
    console.log(`\ndocker: skipped (no daemon or no image ${image}; run scripts/provision-docker.sh)`);
    return;
  }
  const container = execFileSync(
    'docker',
    [
      'run',
      '-d',
      '--rm',
      '--read-only',
      '--tmpfs',
      '/tmp',
      '--label',
      'agentbox.kind=bench',
      image,
      'sleep',
      '3600',
    ],
    { encoding: 'utf8' },
  ).trim();
  try {
    const dockerExec = (argv: readonly string[], env: Record<string, string>, cwd: string) =>
      dockerCliExec(container, argv, env, cwd);
    const fast = await SessionTestSandbox.create({
      pool: {
        startProcess: (req) => dockerExec(req.argv, req.env, req.cwd),
        openShell: () => dockerExec(['sh'], {}, '/'),
      },
    });
    const plain = await SessionTestSandbox.create({
      pool: { enabled: false, startProcess: (req) => dockerExec(req.argv, req.env, req.cwd) },
    });
    // The sandboxes' workdir is a host path; in the container the commands run in /tmp.
    if (!(await fast.sessions.warm()))
      throw new Error(`no session in docker: ${fast.sessions.unavailableReason}`);
    const raw = openShell(['docker', 'exec', '-i', container, 'sh']);
    const cases: Case[] = [
      {
        name: 'floor: setsid sh -c true on an open docker exec',
        once: () => raw.run('setsid sh -c true'),
        samples: [],
      },
      { name: 'session: exec("true")', once: () => fast.exec('true', { cwd: '/tmp' }), samples: [] },
      {
        name: 'plain: exec("true") = `docker exec` CLI per command',
        once: () => plain.exec('true', { cwd: '/tmp' }),
        samples: [],
      },
    ];
    await measureAndReport('docker (busybox-only image, `docker exec -i` stream)', cases, 10);
    raw.close();
    await Promise.all([fast.close(), plain.close()]);
  } finally {
    execFileSync('docker', ['rm', '-f', container], { stdio: 'ignore' });
  }
}

async function ssh(): Promise<void> {
  const statePath = join(
    process.env.AGENTBOX_SSHD_DIR ?? join(import.meta.dirname, '../../../.tmp/sshd'),
    'state.json',
  );
  const state = existsSync(statePath)
    ? (JSON.parse(readFileSync(statePath, 'utf8')) as {
        host: string;
        port: number;
        users: string[];
        privateKeyFile: string;
        knownHostsFile: string;
      })
    : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'agentbox-ssh-bench-'));
  const socket = join(dir, 'mux');
  const base = state && [
    '-p',
    String(state.port),
    '-i',
    state.privateKeyFile,
    '-o',
    `UserKnownHostsFile=${state.knownHostsFile}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    `ControlPath=${socket}`,
    `${state.users[0]}@${state.host}`,
  ];
  try {
    if (!base) throw new Error('no test sshd (run scripts/provision-sshd.sh)');
    // One connection, as the ssh backend keeps one; every channel below is multiplexed on it.
    execFileSync('ssh', ['-M', '-N', '-f', '-o', 'ControlPersist=yes', ...base], {
      stdio: 'ignore',
      timeout: 20_000,
    });
  } catch (error) {
    console.log(`\nssh: skipped (${(error as Error).message.split('\n')[0]})`);
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  try {
    const channel = (command: string) =>
      spawnPlain({
        argv: ['ssh', '-T', ...base!, command],
        cwd: '/',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      });
    const fast = await SessionTestSandbox.create({
      pool: {
        startProcess: (req) => channel(req.argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ')),
        openShell: () => channel('sh'),
      },
    });
    const plain = await SessionTestSandbox.create({
      pool: {
        enabled: false,
        startProcess: (req) => channel(req.argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ')),
      },
    });
    if (!(await fast.sessions.warm()))
      throw new Error(`no session over ssh: ${fast.sessions.unavailableReason}`);
    const raw = openShell(['ssh', '-T', ...base!, 'sh']);
    const cases: Case[] = [
      {
        name: 'floor: setsid sh -c true on an open channel',
        once: () => raw.run('setsid sh -c true'),
        samples: [],
      },
      { name: 'session: exec("true")', once: () => fast.exec('true', { cwd: '/tmp' }), samples: [] },
      {
        name: 'plain: exec("true") = new channel (ssh -S mux)',
        once: () => plain.exec('true', { cwd: '/tmp' }),
        samples: [],
      },
    ];
    await measureAndReport('ssh (OpenSSH client, one multiplexed connection)', cases, 10);
    raw.close();
    await Promise.all([fast.close(), plain.close()]);
  } finally {
    try {
      execFileSync('ssh', ['-O', 'exit', ...base!], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

await local();
await docker();
await ssh();
