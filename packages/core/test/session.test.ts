/**
 * The session fast path keeps every exec promise of the plain path. Each promise is checked
 * through a real BaseSandbox (core's exec engine: timeouts, caps, stdin feeding) whose
 * commands go down sessions opened over local pipes: in the system shell (dash here), in bash
 * as sh, and in busybox alone (a PATH with nothing but busybox applets). A transport that
 * behaves like a docker exec stream checks that a dead runner is noticed even when what it
 * started holds the streams open.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortedError,
  NotFoundError,
  SandboxClosedError,
  SandboxUnavailableError,
  TimeoutError,
} from '../src/index.js';
import type { SessionPoolOptions } from '../src/session/index.js';
import { newNonce } from '../src/session/protocol.js';
import { MarkerScanner } from '../src/session/scanner.js';
import { busyboxOnlyPath, dockerCliExec, SessionTestSandbox, SHELLS, spawnPlain } from './session-local.js';

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Is the process gone (or only a zombie waiting for init)? */
async function processGone(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => undefined);
  return stat === undefined || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

async function waitFor(check: () => Promise<boolean>, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(20);
  }
  return check();
}

let busybox: Awaited<ReturnType<typeof busyboxOnlyPath>>;
beforeAll(async () => {
  busybox = await busyboxOnlyPath();
});
afterAll(async () => {
  await busybox.cleanup();
});

const variants = [
  { name: 'sh', shell: SHELLS.sh!, shellEnv: () => ({}), env: () => ({}) },
  // What /bin/sh is on Fedora-like images.
  { name: 'bash as sh', shell: ['bash', '--posix'], shellEnv: () => ({}), env: () => ({}) },
  {
    name: 'busybox only',
    shell: SHELLS.busybox!,
    // The runner and every command see nothing but busybox applets.
    shellEnv: () => ({ PATH: busybox.dir }),
    env: () => ({ PATH: busybox.dir }),
  },
];

describe.each(variants)('sessions in $name', (variant) => {
  let sandbox: SessionTestSandbox;
  let env: Record<string, string>;

  beforeAll(async () => {
    sandbox = await SessionTestSandbox.create({ shell: variant.shell, shellEnv: variant.shellEnv() });
    env = variant.env();
    expect(await sandbox.sessions.warm()).toBe(true);
  });
  afterAll(async () => {
    await sandbox.close();
  });

  it('runs commands on a session, not the plain path', async () => {
    const before = sandbox.sessions.stats;
    const result = await sandbox.exec('echo hello', { env });
    expect(result.stdout).toBe('hello\n');
    expect(sandbox.sessions.lastPath).toBe('session');
    const after = sandbox.sessions.stats;
    expect(after.session).toBe(before.session + 1);
    expect(after.plain).toBe(before.plain);
  });

  it('keeps stdout and stderr apart, byte for byte', async () => {
    const result = await sandbox.exec('printf out1; printf err1 >&2; printf out2; printf "err2\\n" >&2', {
      env,
    });
    expect(result.stdout).toBe('out1out2');
    expect(result.stderr).toBe('err1err2\n');
  });

  it('passes binary output through exactly, including bytes that look like a marker', async () => {
    const bytes = new Uint8Array(256 * 64);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
    // 0x1e 'a' 'b' starts every marker; the output ends on a partial marker too.
    const tricky = Buffer.concat([Buffer.from(bytes), Buffer.from('\x1eab\x1eab0123\n\x1e\x1ea')]);
    await writeFile(join(sandbox.workdir, 'bin'), tricky);
    const result = await sandbox.exec(['cat', 'bin'], { env });
    expect(Buffer.from(result.stdoutBytes).equals(tricky)).toBe(true);
    const both = await sandbox.exec('cat bin; cat bin >&2', { env });
    expect(Buffer.from(both.stdoutBytes).equals(tricky)).toBe(true);
    expect(Buffer.from(both.stderrBytes).equals(tricky)).toBe(true);
  });

  it('passes large output through exactly', async () => {
    const data = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    await writeFile(join(sandbox.workdir, 'big'), data);
    const result = await sandbox.exec('cat big', { env, maxOutputBytes: 16 * 1024 * 1024 });
    expect(sha(result.stdoutBytes)).toBe(sha(data));
    expect(result.truncated.stdout).toBe(false);
  });

  it('feeds binary stdin intact', async () => {
    const input = new Uint8Array(70_000);
    for (let i = 0; i < input.length; i++) input[i] = (i * 31) % 256; // NULs and invalid UTF-8 included
    const result = await sandbox.exec('cat', { env, stdin: input });
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(Buffer.from(result.stdoutBytes).equals(Buffer.from(input))).toBe(true);
  });

  it('feeds 50 MiB of stdin intact', async () => {
    await sandbox.sessions.warm();
    const input = new Uint8Array(50 * 1024 * 1024);
    for (let i = 0; i < input.length; i += 97) input[i] = i % 251;
    const result = await sandbox.exec('cat > stdin.bin; echo done', { env, stdin: input });
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(result.stdout).toBe('done\n');
    expect(sha(await readFile(join(sandbox.workdir, 'stdin.bin')))).toBe(sha(input));
  });

  it('reports exit codes as results', async () => {
    expect((await sandbox.exec('exit 3', { env })).exitCode).toBe(3);
    expect((await sandbox.exec('exit 255', { env })).exitCode).toBe(255);
    const missing = await sandbox.exec(['no-such-program-here'], { env });
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toContain('no-such-program-here');
    expect((await sandbox.exec('no-such-program-here', { env })).exitCode).toBe(127);
  });

  it('reports a signal death as 128+n with the signal', async () => {
    const killed = await sandbox.exec('kill -9 $$', { env });
    expect(killed.exitCode).toBe(137);
    expect(killed.signal).toBe('SIGKILL');
    const termed = await sandbox.exec('kill -TERM $$', { env });
    expect(termed.exitCode).toBe(143);
    expect(termed.signal).toBe('SIGTERM');
  });

  it('delivers SIGINT to a command (not ignored as in a background job)', async () => {
    const handle = sandbox.spawn(
      'trap "echo got INT; exit 9" INT; echo ready; while :; do sleep 0.05; done',
      { env },
    );
    for await (const chunk of handle.stdout) if (Buffer.from(chunk).toString().includes('ready')) break;
    await handle.kill('SIGINT');
    const result = await handle.wait();
    expect(result.stdout).toContain('got INT');
    expect(result.exitCode).toBe(9);
  });

  it('times out by killing the whole tree, with the output so far, and the session lives on', async () => {
    const lost = sandbox.sessions.stats.lost;
    const error = await sandbox
      .exec('echo $PPID > runner.pid; echo started; sleep 30 & echo $! > bg.pid; sleep 30', {
        env,
        timeoutMs: 500,
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).stdout).toBe('started\n');
    const bgPid = Number((await readFile(join(sandbox.workdir, 'bg.pid'), 'utf8')).trim());
    expect(await waitFor(() => processGone(bgPid))).toBe(true);
    // The session's runner (the command's parent) is alive and takes the next command.
    const runner = (await readFile(join(sandbox.workdir, 'runner.pid'), 'utf8')).trim();
    expect(await processGone(Number(runner))).toBe(false);
    const next = await sandbox.exec('echo next; echo $PPID', { env });
    expect(next.stdout).toBe(`next\n${runner}\n`);
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(sandbox.sessions.stats.lost).toBe(lost);
  });

  it('times out even when the kill lands before the command has started', async () => {
    for (let i = 0; i < 5; i++) {
      const error = await sandbox.exec('sleep 5', { env, timeoutMs: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TimeoutError);
    }
    await sandbox.sessions.warm();
    expect((await sandbox.exec('echo ok', { env })).stdout).toBe('ok\n');
  });

  it('does not call a command that kills itself before the deadline a timeout', async () => {
    const result = await sandbox.exec('kill -KILL $$', { env, timeoutMs: 5_000 });
    expect(result.exitCode).toBe(137);
  });

  it('caps output of 200 MiB with memory bounded, keeping head and tail', async () => {
    const rss = process.memoryUsage().rss;
    let peak = rss;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    const result = await sandbox.exec('head -c 209715200 /dev/zero; echo tail', {
      env,
      maxOutputBytes: 1024 * 1024,
    });
    clearInterval(sampler);
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(result.truncated.stdout).toBe(true);
    expect(result.totalBytes.stdout).toBe(209715200 + 5);
    expect(result.stdoutBytes.length).toBe(1024 * 1024);
    expect(Buffer.from(result.stdoutBytes.subarray(-5)).toString()).toBe('tail\n');
    expect(peak - rss).toBeLessThan(150 * 1024 * 1024);
  });

  it('runs each command with its own env and cwd, and nothing leaks to the next', async () => {
    await mkdir(join(sandbox.workdir, 'sub dir'), { recursive: true });
    const value = `it's "quoted"\nwith a newline and $HOME and \`backticks\``;
    const result = await sandbox.exec('printf %s "$VALUE"; pwd >&2', {
      env: { ...env, VALUE: value },
      cwd: 'sub dir',
    });
    expect(result.stdout).toBe(value);
    expect(result.stderr).toBe(`${join(sandbox.workdir, 'sub dir')}\n`);
    await sandbox.exec('cd /; export LEAK=1; umask 077; FOO=bar', { env });
    const after = await sandbox.exec('pwd; echo "${LEAK-unset} ${FOO-unset} ${VALUE-unset}"; umask', { env });
    expect(after.stdout).toBe(`${sandbox.workdir}\nunset unset unset\n0022\n`);
  });

  it('gives a command exactly the environment asked for', async () => {
    const result = await sandbox.exec(['env'], { env: { ...env, ONLY_HERE: '1' } });
    const names = result.stdout
      .trim()
      .split('\n')
      .map((line) => line.slice(0, line.indexOf('=')))
      .sort();
    expect(names).toContain('ONLY_HERE');
    expect(names).not.toContain('PWD');
    expect(names).not.toContain('OLDPWD');
    // bash's `exec` always exports SHLVL (as 0 here): the one variable a bash runner adds.
    if (variant.name !== 'bash as sh') expect(names).not.toContain('SHLVL');
    expect(names).not.toContain('N');
  });

  it('fails a missing working directory with a typed error and stays usable', async () => {
    const error = await sandbox.exec('true', { env, cwd: 'does/not/exist' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((await sandbox.exec('echo ok', { env })).stdout).toBe('ok\n');
    expect(sandbox.sessions.lastPath).toBe('session');
  });

  it('runs commands concurrently on several sessions', async () => {
    await sandbox.sessions.warm(4);
    const started = Date.now();
    const results = await Promise.all(
      [0, 1, 2, 3].map((i) => sandbox.exec(`sleep 0.5; echo ${i}; echo e${i} >&2`, { env })),
    );
    expect(Date.now() - started).toBeLessThan(1_500);
    results.forEach((result, i) => {
      expect(result.stdout).toBe(`${i}\n`);
      expect(result.stderr).toBe(`e${i}\n`);
    });
    expect(sandbox.sessions.stats.open).toBeGreaterThanOrEqual(4);
  });

  it('streams stdin and output of a spawned command', async () => {
    const handle = sandbox.spawn(['cat'], { env });
    await handle.writeStdin('one ');
    await handle.writeStdin(new Uint8Array([0, 255, 10]));
    await handle.closeStdin();
    const result = await handle.wait();
    expect(Buffer.from(result.stdoutBytes).equals(Buffer.from([...Buffer.from('one '), 0, 255, 10]))).toBe(
      true,
    );
  });

  it('waits, like a pipe, for background output still written to the command streams', async () => {
    const result = await sandbox.exec('(sleep 0.3; echo late; echo late-err >&2) & echo now', { env });
    expect(result.stdout).toBe('now\nlate\n');
    expect(result.stderr).toBe('late-err\n');
    const next = await sandbox.exec('echo clean', { env });
    expect(next.stdout).toBe('clean\n');
    expect(next.stderr).toBe('');
  });

  it('does not wait for a background process that let go of the streams', async () => {
    const started = Date.now();
    const result = await sandbox.exec('sleep 2 >/dev/null 2>&1 & echo $!', { env });
    expect(Date.now() - started).toBeLessThan(1_500);
    const pid = Number(result.stdout.trim());
    expect(await processGone(pid)).toBe(false);
    process.kill(pid, 'SIGKILL');
  });

  it('honours an AbortSignal and stays usable', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const error = await sandbox.exec('sleep 30', { env, signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
    expect((await sandbox.exec('echo ok', { env })).stdout).toBe('ok\n');
  });

  it('replaces a session whose runner is killed; the command in flight fails typed, never hangs', async () => {
    await sandbox.sessions.warm();
    const lost = sandbox.sessions.stats.lost;
    const started = Date.now();
    const error = await sandbox.exec('kill -9 $PPID; sleep 30', { env }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(sandbox.sessions.stats.lost).toBe(lost + 1);
    await sandbox.sessions.warm();
    const next = await sandbox.exec('echo alive', { env });
    expect(next.stdout).toBe('alive\n');
    expect(sandbox.sessions.lastPath).toBe('session');
  });

  it('replaces a session that dies while idle', async () => {
    await sandbox.sessions.warm(1);
    const lost = sandbox.sessions.stats.lost;
    // A command's parent is its session's runner; kill it from outside once idle, as an OOM kill would.
    const victim = await sandbox.exec('echo $PPID', { env });
    process.kill(Number(victim.stdout.trim()), 'SIGKILL');
    await waitFor(async () => sandbox.sessions.stats.lost > lost);
    expect(sandbox.sessions.stats.lost).toBe(lost + 1);
    const next = await sandbox.exec('echo fine', { env });
    expect(next.stdout).toBe('fine\n');
  });
});

describe('choosing the path', () => {
  it('takes the plain path while no session is ready, then the session', async () => {
    const sandbox = await SessionTestSandbox.create();
    try {
      await sandbox.exec('true');
      expect(sandbox.sessions.lastPath).toBe('plain');
      await waitFor(async () => sandbox.sessions.stats.idle > 0);
      await sandbox.exec('true');
      expect(sandbox.sessions.lastPath).toBe('session');
    } finally {
      await sandbox.close();
    }
  });

  it('takes the plain path when sessions are turned off', async () => {
    const sandbox = await SessionTestSandbox.create({ pool: { enabled: false } });
    try {
      expect(await sandbox.sessions.warm()).toBe(false);
      expect((await sandbox.exec('echo plain')).stdout).toBe('plain\n');
      expect(sandbox.sessions.lastPath).toBe('plain');
      expect(sandbox.sessions.stats.session).toBe(0);
    } finally {
      await sandbox.close();
    }
  });

  it('falls back to the plain path, saying why, where the sandbox has no setsid', async () => {
    const empty = join(busybox.dir, '..', `no-setsid-${process.pid}`);
    await mkdir(empty, { recursive: true });
    const sandbox = await SessionTestSandbox.create({ shell: ['/bin/sh'], shellEnv: { PATH: empty } });
    try {
      expect(await sandbox.sessions.warm()).toBe(false);
      expect(sandbox.sessions.unavailableReason).toMatch(/setsid/);
      expect((await sandbox.exec('echo still works')).stdout).toBe('still works\n');
      expect(sandbox.sessions.lastPath).toBe('plain');
    } finally {
      await sandbox.close();
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('gives the same results on both paths', async () => {
    const fast = await SessionTestSandbox.create();
    const plain = await SessionTestSandbox.create({ pool: { enabled: false } });
    try {
      await fast.sessions.warm();
      const cases: [string | string[], { stdin?: string; env?: Record<string, string> }][] = [
        ['echo hi; echo there >&2', {}],
        ['echo "$HOME" | wc -c; pwd | wc -c', {}],
        ['printf "a\\000b"', {}],
        ['exit 42', {}],
        [['env'], { env: { X: 'y z' } }],
        ['cat; echo', { stdin: 'in put' }],
        ['ls /no/such/path', {}],
        [['printf', '%s|', 'a b', "c'd", ''], {}],
        ['kill -TERM $$', {}],
      ];
      for (const [cmd, opts] of cases) {
        await fast.sessions.warm();
        const a = await fast.exec(cmd, opts);
        expect(fast.sessions.lastPath).toBe('session');
        const b = await plain.exec(cmd, opts);
        const fields = (r: typeof a) => ({
          exitCode: r.exitCode,
          signal: r.signal,
          // `env` lists variables in no fixed order.
          stdout: r.stdout
            .replaceAll(fast.workdir, '<dir>')
            .replaceAll(plain.workdir, '<dir>')
            .split('\n')
            .sort()
            .join('\n'),
          stderr: r.stderr,
        });
        expect(fields(a), JSON.stringify(cmd)).toEqual(fields(b));
      }
    } finally {
      await fast.close();
      await plain.close();
    }
  });

  describe('when every session is busy', () => {
    // A transport whose starts are slow, like a docker exec on a busy host: the plain path and a
    // session's shell each take START_MS to start.
    const START_MS = 400;
    const slow = (): Partial<SessionPoolOptions> => ({
      maxSessions: 1,
      startProcess: async (req) => {
        await sleep(START_MS);
        return spawnPlain(req);
      },
      openShell: async () => {
        await sleep(START_MS);
        return spawnPlain({ argv: SHELLS.sh!, cwd: '/', env: {} });
      },
    });

    it('a burst of short commands waits for the session instead of each starting on the plain path', async () => {
      const sandbox = await SessionTestSandbox.create({ pool: slow() });
      try {
        expect(await sandbox.sessions.warm()).toBe(true);
        const results = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => sandbox.exec(`echo ${i}`)));
        expect(results.map((r) => r.stdout)).toEqual(['0\n', '1\n', '2\n', '3\n', '4\n', '5\n']);
        expect(sandbox.sessions.stats).toMatchObject({ session: 6, plain: 0 });
      } finally {
        await sandbox.close();
      }
    });

    it('a command behind a long one takes the plain path once a start would have been quicker', async () => {
      const sandbox = await SessionTestSandbox.create({ pool: slow() });
      try {
        expect(await sandbox.sessions.warm()).toBe(true);
        const long = sandbox.spawn('sleep 30');
        let longEnded = false;
        void long.wait().finally(() => {
          longEnded = true;
        });
        expect((await sandbox.exec('echo quick')).stdout).toBe('quick\n');
        expect(sandbox.sessions.lastPath).toBe('plain');
        expect(sandbox.sessions.stats).toMatchObject({ session: 1, plain: 1 });
        expect(longEnded).toBe(false);
        await long.kill();
        await long.wait().catch(() => {});
      } finally {
        await sandbox.close();
      }
    });

    it('a command waiting for a session honours its AbortSignal and the sandbox closing', async () => {
      const sandbox = await SessionTestSandbox.create({ pool: slow() });
      try {
        expect(await sandbox.sessions.warm()).toBe(true);
        const long = sandbox.spawn('sleep 30');
        const controller = new AbortController();
        const aborted = sandbox.exec('echo never', { signal: controller.signal }).catch((e: unknown) => e);
        await sleep(20);
        expect(sandbox.sessions.stats.plain).toBe(0);
        controller.abort();
        expect(await aborted).toBeInstanceOf(AbortedError);
        const waiting = sandbox.exec('echo never').catch((e: unknown) => e);
        await sleep(20);
        await sandbox.close();
        expect(await waiting).toBeInstanceOf(SandboxClosedError);
        await long.wait().catch(() => {});
      } finally {
        await sandbox.close();
      }
    });
  });

  it('kills what still runs on a session when the sandbox closes', async () => {
    const sandbox = await SessionTestSandbox.create();
    await sandbox.sessions.warm();
    const handle = sandbox.spawn('echo $$; sleep 30');
    let pid = 0;
    for await (const chunk of handle.stdout) {
      pid = Number(Buffer.from(chunk).toString().trim());
      break;
    }
    await sandbox.close();
    await handle.wait().catch(() => {});
    expect(await waitFor(() => processGone(pid))).toBe(true);
  });
});

describe('a transport that reports exit only when the streams end (like docker)', () => {
  let sandbox: SessionTestSandbox;
  beforeAll(async () => {
    sandbox = await SessionTestSandbox.create({ lateExit: true, pool: { livenessIntervalMs: 200 } });
    expect(await sandbox.sessions.warm()).toBe(true);
  });
  afterAll(async () => {
    await sandbox.close();
  });

  it('fails a command whose runner was killed, and kills it, though it holds the streams open', async () => {
    const lost = sandbox.sessions.stats.lost;
    const started = Date.now();
    const error = await sandbox
      .exec('echo $$ > cmd.pid; kill -9 $PPID; exec sleep 30')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(sandbox.sessions.stats.lost).toBe(lost + 1);
    const pid = Number((await readFile(join(sandbox.workdir, 'cmd.pid'), 'utf8')).trim());
    expect(await waitFor(() => processGone(pid))).toBe(true);
    await sandbox.sessions.warm();
    expect((await sandbox.exec('echo next')).stdout).toBe('next\n');
  });

  it('drops a session whose runner died while idle, before a command can hang on it', async () => {
    await sandbox.sessions.warm(2);
    const lost = sandbox.sessions.stats.lost;
    const runner = Number((await sandbox.exec('echo $PPID')).stdout.trim());
    process.kill(runner, 'SIGKILL');
    expect(await waitFor(async () => sandbox.sessions.stats.lost > lost)).toBe(true);
    for (let i = 0; i < 4; i++) expect((await sandbox.exec('echo fine')).stdout).toBe('fine\n');
  });
});

const DOCKER_IMAGE = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';
const dockerReady = (() => {
  try {
    execFileSync('docker', ['image', 'inspect', DOCKER_IMAGE], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    console.warn(`session.test: SKIPPING the docker case (no daemon or no image ${DOCKER_IMAGE})`);
    return false;
  }
})();

describe.skipIf(!dockerReady)(
  'sessions in a busybox-only container (FROM scratch, read-only root, uid 1000)',
  () => {
    let container: string;
    let sandbox: SessionTestSandbox;
    const opts = { cwd: '/workspace' };

    beforeAll(async () => {
      // No --init: PID 1 never reaps, so killed trees stay zombies (which must not count as alive).
      container = execFileSync(
        'docker',
        [
          'run',
          '-d',
          '--rm',
          '--read-only',
          '--tmpfs',
          '/tmp',
          '--label',
          'agentbox.kind=test',
          DOCKER_IMAGE,
          'sleep',
          '600',
        ],
        { encoding: 'utf8' },
      ).trim();
      const dockerExec = (argv: readonly string[], env: Record<string, string>, cwd: string) =>
        dockerCliExec(container, argv, env, cwd);
      sandbox = await SessionTestSandbox.create({
        pool: {
          startProcess: (req) => dockerExec(req.argv, req.env, req.cwd),
          openShell: () => dockerExec(['sh'], {}, '/'),
          livenessIntervalMs: 500,
        },
      });
      expect(await sandbox.sessions.warm()).toBe(true);
    });
    afterAll(async () => {
      await sandbox?.close();
      if (container) execFileSync('docker', ['rm', '-f', container], { stdio: 'ignore' });
    });

    it('runs commands on the session with every semantic', async () => {
      const result = await sandbox.exec('id -u; echo err >&2; exit 7', opts);
      expect(sandbox.sessions.lastPath).toBe('session');
      expect(result).toMatchObject({ exitCode: 7, stdout: '1000\n', stderr: 'err\n' });
      const input = new Uint8Array(1024 * 1024).map((_, i) => (i * 13) % 256);
      const echoed = await sandbox.exec('cat', { ...opts, stdin: input });
      expect(sandbox.sessions.lastPath).toBe('session');
      expect(sha(echoed.stdoutBytes)).toBe(sha(input));
      await sandbox.sessions.warm();
      await sandbox.exec('cd /; export LEAK=1', opts);
      expect((await sandbox.exec('pwd; echo ${LEAK-unset}', opts)).stdout).toBe('/workspace\nunset\n');
    });

    it('times out by killing the whole tree in the container, and the session lives on', async () => {
      await sandbox.sessions.warm();
      const lost = sandbox.sessions.stats.lost;
      const error = await sandbox
        .exec('echo $PPID > /tmp/runner; sleep 300 & echo $! > /tmp/bg; sleep 300', {
          ...opts,
          timeoutMs: 500,
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TimeoutError);
      const check = await sandbox.exec(
        'bg=$(cat /tmp/bg); s=$(cut -d" " -f3 /proc/$bg/stat 2>/dev/null); echo "${s:-gone} $PPID $(cat /tmp/runner)"',
        opts,
      );
      const [state, runner, runnerBefore] = check.stdout.trim().split(' ');
      expect(['gone', 'Z']).toContain(state);
      expect(runner).toBe(runnerBefore);
      expect(sandbox.sessions.stats.lost).toBe(lost);
    });
  },
);

describe('MarkerScanner', () => {
  it('finds markers split across chunks and passes everything else through', () => {
    const nonce = newNonce();
    const stream = Buffer.from(`out\x1eput${nonce}S1 42\nmore${nonce}E1 0 0\n`, 'latin1');
    for (let size = 1; size <= stream.length; size++) {
      const scanner = new MarkerScanner(nonce);
      const data: Buffer[] = [];
      const markers: string[] = [];
      for (let i = 0; i < stream.length; i += size) {
        for (const event of scanner.push(stream.subarray(i, i + size))) {
          if (event.kind === 'data') data.push(Buffer.from(event.bytes));
          else markers.push(`${event.marker.type}${event.marker.seq}:${event.marker.fields.join(',')}`);
        }
      }
      const rest = scanner.flush();
      if (rest) data.push(Buffer.from(rest));
      expect(Buffer.concat(data).toString('latin1')).toBe('out\x1eputmore');
      expect(markers).toEqual(['S1:42', 'E1:0,0']);
    }
  });
});
