/**
 * The fast exec path: core's SessionPool in front of the plain docker exec. Callers do not
 * choose; these tests check which path a command took (`sessions.lastPath`, `sessions.stats`)
 * and that the session path keeps the plain path's promises: stdin, isolation between
 * commands, timeouts that kill the whole tree, and a runner that dies under a command.
 */
import { openSandbox, type SandboxUnavailableError, type TimeoutError } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DockerSandbox } from '../src/index.js';
import '../src/index.js';
import { RUN_LABEL, runId, TEST_CONFIG } from './helpers.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Shell text, in a session command: the pid of its runner, the parent of its parent (field 4 of stat). */
const RUNNER = '$(cut -d" " -f4 /proc/$PPID/stat)';

/** Processes in the container whose command line contains `needle` (read from /proc, plain path or not). */
async function processesLike(sandbox: DockerSandbox, needle: string): Promise<string[]> {
  const r = await sandbox.exec([
    'sh',
    '-c',
    'for f in /proc/[0-9]*/cmdline; do c=$(tr "\\0" " " <"$f" 2>/dev/null) && echo "$c"; done',
  ]);
  return r.stdout.split('\n').filter((line) => line.includes(needle) && !line.includes('/proc/'));
}

/** Wait until an idle session is there again (a used-once session is replaced in the background). */
async function ready(sandbox: DockerSandbox): Promise<void> {
  expect(await sandbox.sessions.warm()).toBe(true);
}

describe('docker fast path (sessions)', () => {
  let sandbox: DockerSandbox;

  beforeAll(async () => {
    sandbox = (await openSandbox({
      backend: 'docker',
      config: TEST_CONFIG,
      policy: { labels: { [RUN_LABEL]: runId } },
    })) as DockerSandbox;
  });

  afterAll(async () => {
    await sandbox?.close();
  });

  it('is warm once the sandbox is open, and a small exec takes it', async () => {
    expect(sandbox.sessions.unavailableReason).toBeUndefined();
    expect(sandbox.sessions.stats.idle).toBeGreaterThanOrEqual(1);
    const before = sandbox.sessions.stats.session;
    const r = await sandbox.exec(['true']);
    expect(r.exitCode).toBe(0);
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(sandbox.sessions.stats.session).toBe(before + 1);
  });

  it('runs as the sandbox user, in the workdir, with stdout and stderr apart', async () => {
    await ready(sandbox);
    const r = await sandbox.exec('id -u; pwd; printf out; printf err >&2; exit 3');
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('1000\n/workspace\nout');
    expect(r.stderr).toBe('err');
  });

  it('cd, export and umask do not leak from one command to the next', async () => {
    await ready(sandbox);
    await sandbox.exec('cd /tmp && export LEAK=yes && umask 077 && X=1');
    expect(sandbox.sessions.lastPath).toBe('session');
    const r = await sandbox.exec('pwd; echo "${LEAK-unset} ${X-unset}"; umask');
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(r.stdout).toBe('/workspace\nunset unset\n0022\n');
    // The caller's env is per command too.
    expect((await sandbox.exec('echo $ONE', { env: { ONE: '1' } })).stdout).toBe('1\n');
    expect((await sandbox.exec('echo "${ONE-unset}"')).stdout).toBe('unset\n');
  });

  it('a command given stdin gets it raw on a session, used once and replaced', async () => {
    await ready(sandbox);
    const opened = sandbox.sessions.stats.opened;
    // As many idle sessions again as before: only a new one can make up for the one used.
    const idle = sandbox.sessions.stats.idle;
    const input = new Uint8Array([0, 1, 2, 0xff, 0xfe, 10, 0x1e, 65]);
    const r = await sandbox.exec(['od', '-An', '-tx1'], { stdin: input });
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(r.stdout.trim().split(/\s+/)).toEqual(['00', '01', '02', 'ff', 'fe', '0a', '1e', '41']);
    // That session took the caller's stdin, so it is not reused: a new one is opened.
    expect(await sandbox.sessions.warm(idle)).toBe(true);
    expect(sandbox.sessions.stats.opened).toBeGreaterThan(opened);
    expect((await sandbox.exec(['echo', 'after'])).stdout).toBe('after\n');
    expect(sandbox.sessions.lastPath).toBe('session');
  });

  it('a spawn keeps stdin open on a session until the caller ends it (half-close)', async () => {
    await ready(sandbox);
    const handle = sandbox.spawn(['sh', '-c', 'cat; echo eof-seen >&2']);
    await handle.writeStdin('line one\n');
    await handle.writeStdin('line two\n');
    await handle.closeStdin();
    const r = await handle.wait();
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('line one\nline two\n');
    expect(r.stderr).toBe('eof-seen\n');
    expect((await sandbox.exec(['echo', 'next'])).stdout).toBe('next\n');
  });

  it('when every session is busy, commands take the plain path after a short wait, and all succeed', async () => {
    await ready(sandbox);
    const plain = sandbox.sessions.stats.plain;
    // At most 8 sessions: of 12 concurrent commands, some must go the plain way.
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => sandbox.exec(`sleep 0.5; echo ${i}`, { timeoutMs: 60_000 })),
    );
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 12 }, (_, i) => `${i}\n`));
    expect(sandbox.sessions.stats.plain).toBeGreaterThan(plain);
  });

  it('a timeout kills the whole tree, and the session path works afterwards', async () => {
    await ready(sandbox);
    const error = (await sandbox
      .exec('sleep 301 & sleep 302 & echo started; wait', { timeoutMs: 1_500 })
      .catch((e: unknown) => e)) as TimeoutError;
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(error.code).toBe('TIMEOUT');
    expect(error.partial?.stdout).toContain('started');
    // The background children are gone too (give the kernel a moment on a busy machine).
    let left = await processesLike(sandbox, 'sleep 30');
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await sleep(100);
      left = await processesLike(sandbox, 'sleep 30');
    }
    expect(left).toEqual([]);
    await ready(sandbox);
    const r = await sandbox.exec(['echo', 'alive']);
    expect(r.stdout).toBe('alive\n');
    expect(sandbox.sessions.lastPath).toBe('session');
  });

  it('a command that handles the signal of a kill ends in its own time with its own status', async () => {
    await ready(sandbox);
    const handle = sandbox.spawn([
      'sh',
      '-c',
      // The kill may signal it twice (its group, and as a holder of the output): once is handled.
      'trap \'trap "" TERM; echo cleaning; sleep 0.3; echo done; exit 7\' TERM; echo ready; while :; do sleep 0.1; done',
    ]);
    let out = '';
    const reader = (async () => {
      for await (const chunk of handle.stdout) out += new TextDecoder().decode(chunk);
    })();
    for (let i = 0; i < 100 && !out.includes('ready'); i++) await sleep(50);
    expect(sandbox.sessions.lastPath).toBe('session');
    await handle.kill('SIGTERM');
    const r = await handle.wait();
    await reader;
    expect(out).toBe('ready\ncleaning\ndone\n');
    expect(r).toMatchObject({ exitCode: 7, signal: null });
  });

  it('a runner killed under its command fails that command with SANDBOX_UNAVAILABLE; the next exec works', async () => {
    await ready(sandbox);
    const lost = sandbox.sessions.stats.lost;
    // The command's parent is the session's waiting shell (hidden programs: the command runs in
    // its child), and that shell's parent the runner; `sleep` keeps the session's streams open.
    const error = (await sandbox
      .exec(['sh', '-c', `kill -9 ${RUNNER}; exec sleep 303`], { timeoutMs: 60_000 })
      .catch((e: unknown) => e)) as SandboxUnavailableError;
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(sandbox.sessions.stats.lost).toBe(lost + 1);
    // What the command left running is killed with it.
    let left = await processesLike(sandbox, 'sleep 303');
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await sleep(100);
      left = await processesLike(sandbox, 'sleep 303');
    }
    expect(left).toEqual([]);
    expect((await sandbox.exec(['echo', 'next'])).stdout).toBe('next\n');
    await ready(sandbox);
    expect((await sandbox.exec(['echo', 'fast again'])).stdout).toBe('fast again\n');
    expect(sandbox.sessions.lastPath).toBe('session');
  });

  it('a runner killed from another exec is noticed the same way', async () => {
    await ready(sandbox);
    const handle = sandbox.spawn(['sh', '-c', `echo ${RUNNER}; exec sleep 304`], { timeoutMs: 60_000 });
    let runner = '';
    for await (const chunk of handle.stdout) {
      runner += new TextDecoder().decode(chunk);
      if (runner.includes('\n')) break;
    }
    expect(sandbox.sessions.lastPath).toBe('session');
    const pid = runner.trim();
    expect(pid).toMatch(/^\d+$/);
    await sandbox.exec(['kill', '-9', pid]);
    const error = (await handle.wait().catch((e: unknown) => e)) as SandboxUnavailableError;
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect((await sandbox.exec(['echo', 'next'])).stdout).toBe('next\n');
  });

  it('closing the sandbox ends every session', async () => {
    const other = (await openSandbox({
      backend: 'docker',
      config: TEST_CONFIG,
      policy: { labels: { [RUN_LABEL]: runId } },
    })) as DockerSandbox;
    const running = other.exec('sleep 305', { timeoutMs: 60_000 }).catch((e: unknown) => e);
    await sleep(200);
    await other.close();
    const error = (await running) as { code?: string };
    expect(error.code).toBe('SANDBOX_CLOSED');
    expect(other.sessions.stats.open).toBe(0);
  });
});

describe('docker plain path (config fastPath: false)', () => {
  let sandbox: DockerSandbox;

  beforeAll(async () => {
    sandbox = (await openSandbox({
      backend: 'docker',
      policy: { labels: { [RUN_LABEL]: runId } },
      config: { ...TEST_CONFIG, fastPath: false },
    })) as DockerSandbox;
  });

  afterAll(async () => {
    await sandbox?.close();
  });

  it('every command takes the plain path, and the report is the same', async () => {
    expect(sandbox.sessions.unavailableReason).toBeDefined();
    const r = await sandbox.exec('id -u; pwd');
    expect(r.stdout).toBe('1000\n/workspace\n');
    expect(sandbox.sessions.lastPath).toBe('plain');
    expect(sandbox.sessions.stats).toMatchObject({ session: 0, opened: 0 });
    expect(sandbox.enforcement).toBeDefined();
  });
});
