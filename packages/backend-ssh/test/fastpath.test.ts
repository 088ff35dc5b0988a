/**
 * The fast exec path (core's SessionPool over this connection): which path a command took, and
 * that the session path keeps the semantics of the plain one when its runner dies, when the
 * connection drops, when a command changes its shell's state, and when a timeout kills a tree.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AgentboxError, openSandbox } from '@agentbox/core';
import { afterAll, describe, expect, it } from 'vitest';
import '../src/index.js';
import type { SshConfig, SshSandbox } from '../src/index.js';
import { sshCli, sshConfig, sshd } from './sshd.ts';

const run = promisify(execFile);

const rootName = `ssh-fastpath-${process.pid}-${Date.now().toString(36)}`;
const root = `~/.agentbox/${rootName}`;
afterAll(() => sshCli(`rm -rf "$HOME/.agentbox/${rootName}"`).catch(() => {}));

const open = async (config: Partial<SshConfig> = {}) =>
  (await openSandbox({ backend: 'ssh', config: sshConfig({ root, ...config }) })) as SshSandbox;

/** A number no other test's `sleep` uses, to find (or not) its processes on the host. */
const uniqueMark = () => String(700_000 + Math.floor(Math.random() * 99_999));

/** How many processes on the host run exactly `sleep <mark>`. */
async function sleeping(mark: string): Promise<number> {
  return Number((await sshCli(`ps -eo args | grep -c '^sleep ${mark}$'; true`)).trim());
}

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Exec small commands until one takes the session path (the pool may still be replacing a session). */
async function sessionExec(sandbox: SshSandbox, cmd: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const result = await sandbox.exec(cmd);
    if (sandbox.sessions.lastPath === 'session') return result.stdout;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `no session path: ${sandbox.sessions.unavailableReason ?? JSON.stringify(sandbox.sessions.stats)}`,
  );
}

async function rejection(promise: Promise<unknown>): Promise<AgentboxError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a rejection').toBeInstanceOf(AgentboxError);
  return error as AgentboxError;
}

/** Kill the sshd processes serving the client connection on local port `localPort`. */
async function dropConnection(localPort: number): Promise<void> {
  const { stdout } = await run('ss', [
    '-Htnp',
    'state',
    'established',
    `( sport = :${sshd().port} and dport = :${localPort} )`,
  ]);
  const pids = new Set([...stdout.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])));
  expect(pids.size).toBeGreaterThan(0);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

describe('fast path', () => {
  it('a small exec takes the session path, on the one connection; fastPath: false takes the plain path', async () => {
    await using sandbox = await open();
    const before = sandbox.sessions.stats;
    const result = await sandbox.exec(['sh', '-c', 'printf out; printf err >&2; exit 3']);
    expect(sandbox.sessions.lastPath).toBe('session');
    expect([result.stdout, result.stderr, result.exitCode]).toEqual(['out', 'err', 3]);
    expect(sandbox.sessions.stats.session).toBe(before.session + 1);
    expect((await sandbox.exec('pwd')).stdout).toBe(`${sandbox.workdir}\n`);
    expect(sandbox.sessions.unavailableReason).toBeUndefined();
    expect(sandbox.connection.connects).toBe(1);

    await using plain = await open({ fastPath: false });
    expect((await plain.exec('echo plain')).stdout).toBe('plain\n');
    expect(plain.sessions.lastPath).toBe('plain');
    expect(plain.sessions.stats).toMatchObject({ session: 0, opened: 0 });
    expect(plain.sessions.unavailableReason).toBeDefined();
  });

  it('stdin given to an exec reaches the command on the session path, byte-exact', async () => {
    await using sandbox = await open();
    await sandbox.exec('true');
    const input = new Uint8Array([0, 1, 2, 0xff, 0xfe, 10, 0]);
    const result = await sandbox.exec(['od', '-An', '-tx1'], { stdin: input });
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(result.stdout.trim().split(/\s+/)).toEqual(['00', '01', '02', 'ff', 'fe', '0a', '00']);
  });

  it('cd, export and umask in one command do not reach the next', async () => {
    await using sandbox = await open();
    const probe = 'pwd; echo "${LEAK-unset}"; umask';
    const before = await sessionExec(sandbox, probe);
    expect(before.startsWith(`${sandbox.workdir}\nunset\n`)).toBe(true);
    expect(before).not.toContain('0000');
    await sessionExec(sandbox, 'cd /tmp; export LEAK=1; umask 000; true');
    expect(await sessionExec(sandbox, probe)).toBe(before);
  });

  it('the runner killed mid-command fails it with SANDBOX_UNAVAILABLE; the next exec works', async () => {
    await using sandbox = await open();
    await sessionExec(sandbox, 'true');
    const mark = uniqueMark();
    let runner = '';
    // With the jail's hidden programs the command runs in a child of its waiting shell, whose
    // parent is the runner (field 4 of /proc/PID/stat); otherwise the runner is its parent.
    const runnerPid = sandbox.jail?.hidden ? '$(cut -d" " -f4 /proc/$PPID/stat)' : '$PPID';
    const pending = sandbox.exec(['sh', '-c', `echo ${runnerPid}; exec sleep ${mark}`], {
      onStdout: (chunk) => {
        runner += Buffer.from(chunk).toString();
      },
    });
    await until('the command reports its runner', async () => runner.endsWith('\n'));
    expect(sandbox.sessions.lastPath).toBe('session');
    const started = Date.now();
    // In a jail the pid is one of the jail's PID namespace: kill it from inside.
    if (sandbox.jail) await sandbox.exec(['kill', '-KILL', String(Number(runner))]);
    else await sshCli(`kill -KILL ${Number(runner)}`);
    const error = await rejection(pending);
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(15_000);
    // Its process group was killed with it.
    await until('the orphaned command is killed', async () => (await sleeping(mark)) === 0);
    expect((await sandbox.exec('echo next')).stdout).toBe('next\n');
    expect(await sessionExec(sandbox, 'echo session again')).toBe('session again\n');
    expect(sandbox.sessions.stats.lost).toBeGreaterThanOrEqual(1);
  });

  it('a timeout kills the whole tree, and the session path works afterwards', async () => {
    await using sandbox = await open();
    await sessionExec(sandbox, 'true');
    const mark = uniqueMark();
    const error = await rejection(
      sandbox.exec(['sh', '-c', `sleep ${mark} & sleep ${mark} >/dev/null 2>&1 & echo up; sleep ${mark}`], {
        timeoutMs: 1_500,
      }),
    );
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(error.code).toBe('TIMEOUT');
    expect((error as AgentboxError & { stdout?: string }).stdout).toBe('up\n');
    await until('the whole tree is gone', async () => (await sleeping(mark)) === 0);
    expect(await sessionExec(sandbox, 'echo alive')).toBe('alive\n');
    expect(sandbox.connection.connects).toBe(1);
  });

  it('a dropped connection fails session commands with SANDBOX_UNAVAILABLE; the pool recovers on the new one', async () => {
    await using sandbox = await open();
    await sessionExec(sandbox, 'true');
    const mark = uniqueMark();
    let out = '';
    const pending = sandbox.exec(['sh', '-c', `echo started; exec sleep ${mark}`], {
      onStdout: (chunk) => {
        out += Buffer.from(chunk).toString();
      },
    });
    await until('the command starts', async () => out === 'started\n');
    expect(sandbox.sessions.lastPath).toBe('session');
    await dropConnection(sandbox.connection.localPort!);
    const error = await rejection(pending);
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(await sessionExec(sandbox, 'echo back')).toBe('back\n');
    expect(sandbox.connection.connects).toBe(2);
    await until('the orphaned command is killed', async () => (await sleeping(mark)) === 0);
  });
});
