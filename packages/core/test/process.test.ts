/**
 * The exec engine's contract around signals and stopping, checked on this machine: the Linux
 * signal table and its one gate (parseSignal), typed rejections of every ExecHandle call,
 * killGraceMs (SIGTERM, then SIGKILL) on the plain and the session path, a deadline that
 * counts from the call, the request-timeout helper, and apiCommand with hostile values.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  API_CWD_FAILED_STATUS,
  apiCommand,
  apiCommandFailure,
  BaseSandbox,
  type CheckpointStore,
  enforcementReport,
  type HostProcess,
  type RawProcess,
  type StartRequest,
  startHostProcess,
  withRequestTimeout,
} from '../src/backend.js';
import {
  AbortedError,
  AgentboxError,
  type Capabilities,
  type ExecHandle,
  InvalidArgumentError,
  LINUX_SIGNALS,
  NotFoundError,
  PermissionDeniedError,
  parseSignal,
  SandboxClosedError,
  SandboxUnavailableError,
  signalName,
  signalNumber,
  TimeoutError,
  UnsupportedError,
} from '../src/index.js';
import { SessionTestSandbox } from './session-local.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const isRoot = process.getuid?.() === 0;

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

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** A typed error from the kit, never a plain Error, naming the backend and the operation. */
function expectTyped(error: unknown, code: string, operation: string): void {
  expect(error).toBeInstanceOf(AgentboxError);
  expect((error as AgentboxError).code).toBe(code);
  expect((error as AgentboxError).backend).toBe('host-test');
  expect((error as AgentboxError).operation).toBe(operation);
}

const noCheckpoints: CheckpointStore = {
  create: () => Promise.reject(new UnsupportedError('no checkpoints here')),
  restore: () => Promise.reject(new UnsupportedError('no checkpoints here')),
  list: () => Promise.resolve([]),
  delete: () => Promise.reject(new UnsupportedError('no checkpoints here')),
};

/** The local transport (startHostProcess) behind BaseSandbox, with knobs for a slow or broken start. */
class HostSandbox extends BaseSandbox {
  protected readonly checkpoints = noCheckpoints;
  readonly started: HostProcess[] = [];
  /** Wait this long before starting; `honour` decides whether the start signal cuts the wait short. */
  slowStart: { ms: number; honour: boolean } | undefined;
  /** Replace the started process (to fake a transport whose calls fail). */
  wrap: ((raw: RawProcess) => RawProcess) | undefined;

  constructor(dir: string, lacks: Partial<Capabilities> = {}) {
    super({
      kind: 'host-test',
      id: 'host-test',
      workdir: dir,
      capabilities: {
        isolation: 'none',
        checkpoints: false,
        spawn: true,
        stdin: true,
        kill: true,
        nonRootUser: !isRoot,
        networkPolicy: false,
        reattach: false,
        ...lacks,
      },
      enforcement: enforcementReport({ status: 'not-supported', detail: 'a test sandbox on this machine' }),
    });
  }

  protected async startProcess(req: StartRequest, signal: AbortSignal | undefined): Promise<RawProcess> {
    if (this.slowStart) {
      const { ms, honour } = this.slowStart;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, ms);
        if (honour)
          signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(new AbortedError('start given up'));
          });
      });
    }
    const proc = startHostProcess(req);
    this.started.push(proc);
    return this.wrap ? this.wrap(proc) : proc;
  }

  protected readFileAt(): Promise<Uint8Array> {
    return Promise.reject(new UnsupportedError('not here'));
  }

  protected writeFileAt(): Promise<void> {
    return Promise.reject(new UnsupportedError('not here'));
  }

  protected async closeResources(): Promise<void> {
    await Promise.all(this.started.map((p) => p.kill('SIGKILL').catch(() => {})));
  }
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'agentbox-process-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function freshDir(name: string): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

describe('the Linux signal table', () => {
  it('numbers signals as Linux does, whatever the host', () => {
    expect(LINUX_SIGNALS).toHaveLength(31);
    expect(signalNumber('SIGHUP')).toBe(1);
    expect(signalNumber('SIGKILL')).toBe(9);
    // These differ on macOS (30, 20, 17): the host's os.constants would be wrong for a Linux sandbox.
    expect(signalNumber('SIGUSR1')).toBe(10);
    expect(signalNumber('SIGCHLD')).toBe(17);
    expect(signalNumber('SIGSTOP')).toBe(19);
    expect(signalNumber('SIGSYS')).toBe(31);
    expect(signalNumber('SIGIOT')).toBe(6);
    expect(signalNumber('SIGNOPE')).toBe(0);
    expect(signalName(15)).toBe('SIGTERM');
    expect(signalName(0)).toBeNull();
    expect(signalName(32)).toBeNull();
    expect(signalName(1.5)).toBeNull();
  });

  it('parseSignal normalises a name or a number to the canonical name', () => {
    for (const input of ['SIGTERM', 'TERM', 'sigterm', 'term', 'SigTerm', 15, '15'])
      expect(parseSignal(input)).toBe('SIGTERM');
    expect(parseSignal('kill')).toBe('SIGKILL');
    expect(parseSignal(1)).toBe('SIGHUP');
    expect(parseSignal(31)).toBe('SIGSYS');
    expect(parseSignal('IOT')).toBe('SIGABRT');
    expect(parseSignal('SIGPOLL')).toBe('SIGIO');
  });

  it('parseSignal refuses anything else with InvalidArgumentError, carrying the context', () => {
    const bad: unknown[] = [
      '',
      'SIG',
      'NOPE',
      'SIGBREAK',
      'SIGINFO',
      'TERM; rm -rf /',
      '$(reboot)',
      ' TERM',
      'TERM\n',
      '-9',
      '9 ',
      0,
      32,
      -15,
      1.5,
      Number.NaN,
      '0',
      '64',
      'SIGRTMIN',
      null,
      undefined,
      { toString: () => 'SIGTERM' },
      // No toString to build the message from (fast-check found it threw a TypeError).
      Object.create(null),
      10n,
    ];
    for (const input of bad) {
      let caught: unknown;
      try {
        parseSignal(input, { backend: 'x', operation: 'kill' });
      } catch (error) {
        caught = error;
      }
      expect(caught, Object.prototype.toString.call(input)).toBeInstanceOf(InvalidArgumentError);
      expect((caught as InvalidArgumentError).operation).toBe('kill');
    }
  });
});

describe('ExecHandle calls reject with typed errors', () => {
  let sandbox: HostSandbox;
  beforeAll(async () => {
    sandbox = new HostSandbox(await freshDir('typed'));
  });
  afterAll(() => sandbox.close());

  it('kill takes names and numbers, and refuses a bad signal before anything is sent', async () => {
    const handle = sandbox.spawn(['sleep', '30']);
    const bad = await rejection(handle.kill('TERM; touch /tmp/x' as never));
    expectTyped(bad, 'INVALID_ARGUMENT', 'kill');
    expectTyped(await rejection(handle.kill(0)), 'INVALID_ARGUMENT', 'kill');
    await handle.kill(15);
    const result = await handle.wait();
    expect(result.signal).toBe('SIGTERM');
    expect(result.exitCode).toBe(143);
    const other = sandbox.spawn(['sleep', '30']);
    await other.kill('usr1');
    expect((await other.wait()).exitCode).toBe(128 + 10);
  });

  it('writeStdin after closeStdin, after the command ended, and with a bad chunk is INVALID_ARGUMENT', async () => {
    const handle = sandbox.spawn(['cat']);
    expectTyped(await rejection(handle.writeStdin(42 as never)), 'INVALID_ARGUMENT', 'writeStdin');
    await handle.closeStdin();
    expectTyped(await rejection(handle.writeStdin('late')), 'INVALID_ARGUMENT', 'writeStdin');
    await handle.wait();

    const ended = sandbox.spawn(['true']);
    await ended.wait();
    const error = await rejection(ended.writeStdin('nobody reads this'));
    expectTyped(error, 'INVALID_ARGUMENT', 'writeStdin');
    expect((error as Error).message).toMatch(/stdin is closed/);
    // Closing the input of a command that has ended is a no-op, not an error.
    await ended.closeStdin();
  });

  it('a command that never started makes writeStdin, closeStdin and kill reject with its typed error', async () => {
    const handle = sandbox.spawn(['cat'], { cwd: 'no/such/dir' });
    for (const call of [() => handle.writeStdin('x'), () => handle.kill(), () => handle.wait()]) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(NotFoundError);
    }
    expect(await rejection(handle.closeStdin())).toBeInstanceOf(NotFoundError);
  });

  it('a transport that throws plain Errors still gives typed errors with backend and operation', async () => {
    const broken = new HostSandbox(await freshDir('broken'));
    broken.wrap = (raw) => ({
      ...raw,
      stdout: raw.stdout,
      stderr: raw.stderr,
      exit: raw.exit,
      writeStdin: () => Promise.reject(new Error('the wire broke')),
      closeStdin: () => Promise.reject(new Error('the wire broke')),
      kill: () => Promise.reject(new Error('the wire broke')),
    });
    try {
      const handle = broken.spawn(['sleep', '30']);
      expectTyped(await rejection(handle.writeStdin('x')), 'INTERNAL', 'writeStdin');
      expectTyped(await rejection(handle.closeStdin()), 'INTERNAL', 'closeStdin');
      expectTyped(await rejection(handle.kill('SIGKILL')), 'INTERNAL', 'kill');
      for (const error of [await rejection(handle.kill('SIGKILL'))])
        expect(Object.getPrototypeOf(error)).not.toBe(Error.prototype);
    } finally {
      await broken.close();
    }
  });

  it('a command whose transport never reports its end settles SANDBOX_CLOSED once close has finished', async () => {
    const stuck = new HostSandbox(await freshDir('stuck'));
    // Like an exec stream a runtime keeps open after its container is gone: no exit, ever.
    stuck.wrap = (raw) => ({ ...raw, exit: new Promise<never>(() => {}) });
    const pending = stuck.exec(['sleep', '30']);
    pending.catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    await stuck.close();
    expect(await rejection(pending)).toMatchObject({ code: 'SANDBOX_CLOSED' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('after close, writeStdin, closeStdin and kill are SANDBOX_CLOSED', async () => {
    const closing = new HostSandbox(await freshDir('closing'));
    const handle = closing.spawn(['cat']);
    await handle.writeStdin('x');
    await closing.close();
    expectTyped(await rejection(handle.writeStdin('y')), 'SANDBOX_CLOSED', 'writeStdin');
    expectTyped(await rejection(handle.closeStdin()), 'SANDBOX_CLOSED', 'closeStdin');
    expectTyped(await rejection(handle.kill()), 'SANDBOX_CLOSED', 'kill');
    expect(await rejection(handle.wait())).toBeInstanceOf(SandboxClosedError);
  });

  it('a bad killGraceMs is INVALID_ARGUMENT', async () => {
    for (const killGraceMs of [-1, Number.NaN, Number.POSITIVE_INFINITY])
      expectTyped(await rejection(sandbox.exec(['true'], { killGraceMs })), 'INVALID_ARGUMENT', 'exec');
  });
});

// `$1` is the case's directory: the trap leaves a marker there when SIGTERM arrives.
const TRAPS_TERM = 'trap \'echo term > "$1/marker"; exit 0\' TERM; echo ready; sleep 30 & wait';

for (const path of ['plain', 'session'] as const) {
  describe(`killGraceMs (${path} path)`, () => {
    let sandbox: BaseSandbox;
    beforeAll(async () => {
      sandbox =
        path === 'plain' ? new HostSandbox(await freshDir('grace')) : await SessionTestSandbox.create();
    });
    afterAll(() => sandbox.close());

    const hasMarker = (dir: string) =>
      readFile(join(dir, 'marker'), 'utf8').then(
        () => true,
        () => false,
      );

    it('0 (the default) kills at once: the command never sees SIGTERM', async () => {
      const dir = await freshDir(`${path}-zero`);
      for (const opts of [{}, { killGraceMs: 0 }]) {
        const error = await rejection(
          sandbox.exec(['sh', '-c', TRAPS_TERM, 'sh', dir], { timeoutMs: 500, ...opts }),
        );
        expect(error).toBeInstanceOf(TimeoutError);
        expect((error as TimeoutError).stdout).toBe('ready\n');
        expect(await hasMarker(dir)).toBe(false);
      }
    });

    it('> 0 sends SIGTERM first: the trap runs, and the timeout is reported without waiting out the grace', async () => {
      const dir = await freshDir(`${path}-grace`);
      const started = Date.now();
      const error = await rejection(
        sandbox.exec(['sh', '-c', TRAPS_TERM, 'sh', dir], { timeoutMs: 500, killGraceMs: 10_000 }),
      );
      expect(error).toBeInstanceOf(TimeoutError);
      expect(await hasMarker(dir)).toBe(true);
      expect(Date.now() - started).toBeLessThan(8_000);
    });

    it('a tree that ignores SIGTERM gets SIGKILL when the grace ends', async () => {
      const started = Date.now();
      const error = await rejection(
        sandbox.exec(['sh', '-c', "trap '' TERM; sleep 30"], { timeoutMs: 300, killGraceMs: 700 }),
      );
      expect(error).toBeInstanceOf(TimeoutError);
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(950);
      expect(took).toBeLessThan(8_000);
    });

    it('what is left of the tree when the leader exits on SIGTERM is killed too', async () => {
      const dir = await freshDir(`${path}-leftover`);
      // The background child ignores SIGTERM; the leader exits on it.
      const script = `(trap '' TERM; exec sleep 30) & echo $! > "$1/child"; trap 'exit 0' TERM; echo ready; wait`;
      const error = await rejection(
        sandbox.exec(['sh', '-c', script, 'sh', dir], { timeoutMs: 500, killGraceMs: 20_000 }),
      );
      expect(error).toBeInstanceOf(TimeoutError);
      const child = Number(await readFile(join(dir, 'child'), 'utf8'));
      expect(child).toBeGreaterThan(1);
      expect(await waitFor(() => processGone(child))).toBe(true);
    });

    it('an abort gets the same grace', async () => {
      const dir = await freshDir(`${path}-abort`);
      const controller = new AbortController();
      let handle: ExecHandle | undefined;
      const seen = new Promise<void>((resolve) => {
        handle = sandbox.spawn(['sh', '-c', TRAPS_TERM, 'sh', dir], {
          signal: controller.signal,
          killGraceMs: 10_000,
          onStdout: () => resolve(),
        });
      });
      await seen;
      controller.abort();
      const error = await rejection(handle!.wait());
      expect(error).toBeInstanceOf(AbortedError);
      expect(await hasMarker(dir)).toBe(true);
    });
  });
}

describe('what a backend lacks is refused with its own reason', () => {
  it('spawn, stdin and kill are UNSUPPORTED where the capabilities say so; exec without them works', async () => {
    const reasons = {
      spawn: 'no streams here',
      stdin: 'the API takes no input',
      kill: 'the API can only terminate',
    };
    const none = new HostSandbox(await freshDir('lacks-all'), {
      spawn: false,
      stdin: false,
      unsupported: reasons,
    });
    try {
      expect(() => none.spawn(['true'])).toThrow(/spawn is not supported: no streams here/);
      // The message says what to do instead.
      expect(() => none.spawn(['true'])).toThrow(/Use exec\(\)/);
      const error = await rejection(none.exec(['cat'], { stdin: 'x' }));
      expectTyped(error, 'UNSUPPORTED', 'exec');
      expect((error as Error).message).toMatch(/the API takes no input/);
      expect((await none.exec(['echo', 'ok'])).stdout).toBe('ok\n');
    } finally {
      await none.close();
    }
    const some = new HostSandbox(await freshDir('lacks-some'), {
      stdin: false,
      kill: false,
      unsupported: reasons,
    });
    try {
      const handle = some.spawn(['sleep', '30'], { timeoutMs: 500 });
      expectTyped(await rejection(handle.writeStdin('x')), 'UNSUPPORTED', 'writeStdin');
      const killed = await rejection(handle.kill('SIGINT'));
      expectTyped(killed, 'UNSUPPORTED', 'kill');
      expect((killed as Error).message).toMatch(/the API can only terminate/);
      // The engine still stops the command at its deadline.
      expect(await rejection(handle.wait())).toBeInstanceOf(TimeoutError);
    } finally {
      await some.close();
    }
  });
});

describe('killGraceMs and close', () => {
  it('closing the sandbox does not wait out a grace in progress', async () => {
    const sandbox = new HostSandbox(await freshDir('grace-close'));
    const started = Date.now();
    const pending = rejection(
      sandbox.exec(['sh', '-c', "trap '' TERM; sleep 30"], { timeoutMs: 300, killGraceMs: 30_000 }),
    );
    await sleep(800);
    // Only the engine may end it now: this test sandbox's own cleanup kills nothing.
    sandbox.started.length = 0;
    await sandbox.close();
    expect(await pending).toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('timeoutMs counts from the call', () => {
  it('a start that takes longer than the deadline is a TimeoutError, even when the backend ignores the signal', async () => {
    const sandbox = new HostSandbox(await freshDir('slow-ignore'));
    try {
      sandbox.slowStart = { ms: 800, honour: false };
      const started = Date.now();
      const error = await rejection(sandbox.exec(['sleep', '30'], { timeoutMs: 300 }));
      expect(error).toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeLessThan(5_000);
      // The process that started late was killed at once.
      const pid = sandbox.started[0]?.pid;
      expect(pid).toBeGreaterThan(1);
      expect(await waitFor(() => processGone(pid!))).toBe(true);
    } finally {
      await sandbox.close();
    }
  });

  it('a backend that honours the start signal gives up the start at the deadline', async () => {
    const sandbox = new HostSandbox(await freshDir('slow-honour'));
    try {
      sandbox.slowStart = { ms: 20_000, honour: true };
      const started = Date.now();
      const error = await rejection(sandbox.exec(['true'], { timeoutMs: 300 }));
      expect(error).toBeInstanceOf(TimeoutError);
      expect((error as TimeoutError).timeoutMs).toBe(300);
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(sandbox.started).toHaveLength(0);
    } finally {
      await sandbox.close();
    }
  });

  it('the time spent starting counts: 400 ms to start plus 400 ms of work overruns a 600 ms deadline', async () => {
    const sandbox = new HostSandbox(await freshDir('slow-sum'));
    try {
      sandbox.slowStart = { ms: 400, honour: true };
      expect(await rejection(sandbox.exec(['sleep', '0.4'], { timeoutMs: 600 }))).toBeInstanceOf(
        TimeoutError,
      );
      expect((await sandbox.exec(['sleep', '0.1'], { timeoutMs: 5_000 })).exitCode).toBe(0);
    } finally {
      await sandbox.close();
    }
  });

  it('an abort during a slow start is an AbortedError', async () => {
    const sandbox = new HostSandbox(await freshDir('slow-abort'));
    try {
      sandbox.slowStart = { ms: 20_000, honour: true };
      const controller = new AbortController();
      const pending = sandbox.exec(['true'], { signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      expect(await rejection(pending)).toBeInstanceOf(AbortedError);
    } finally {
      await sandbox.close();
    }
  });
});

describe('withRequestTimeout', () => {
  const context = { backend: 'api', operation: 'exec' };

  it('passes a result through, with or without a deadline', async () => {
    expect(await withRequestTimeout(Promise.resolve(7), 1_000, context)).toBe(7);
    expect(await withRequestTimeout(async () => 8, undefined, context)).toBe(8);
  });

  it('past the deadline: a retryable SandboxUnavailableError, and the request signal aborts', async () => {
    let requestSignal: AbortSignal | undefined;
    const error = await rejection(
      withRequestTimeout(
        (signal) => {
          requestSignal = signal;
          return new Promise(() => {});
        },
        50,
        context,
      ),
    );
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect((error as SandboxUnavailableError).retryable).toBe(true);
    expect((error as SandboxUnavailableError).backend).toBe('api');
    expect(requestSignal?.aborted).toBe(true);
  });

  it('keeps the request error when it fails first, and refuses a bad limit', async () => {
    const boom = new Error('boom');
    expect(await rejection(withRequestTimeout(Promise.reject(boom), 1_000, context))).toBe(boom);
    expect(await rejection(withRequestTimeout(Promise.resolve(1), 0, context))).toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});

describe('apiCommand: cwd and env without shell text', () => {
  /** Run an argv as an argv-only API would: directly, from /, with a bare environment. */
  async function runArgv(argv: string[]) {
    const proc = startHostProcess({ argv, cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    const chunks: Record<'out' | 'err', Buffer[]> = { out: [], err: [] };
    await Promise.all([
      (async () => {
        for await (const c of proc.stdout) chunks.out.push(Buffer.from(c));
      })(),
      (async () => {
        for await (const c of proc.stderr) chunks.err.push(Buffer.from(c));
      })(),
    ]);
    const exit = await proc.exit;
    return {
      exitCode: exit.exitCode,
      stdout: Buffer.concat(chunks.out).toString('utf8'),
      stderr: Buffer.concat(chunks.err).toString('utf8'),
    };
  }

  const HOSTILE = [
    `it's "quoted"`,
    '$(touch PWNED)',
    '`touch PWNED`',
    'new\nline',
    '-n',
    '--',
    '-i',
    '; touch PWNED #',
    '$HOME ${PATH} \\ *',
    'A=B',
  ];

  it('runs in a hostile cwd with exactly the given env and argv, and nothing is evaluated', async () => {
    const base = await freshDir('api');
    const cwd = join(base, `-d it's $(touch PWNED) \`x\`\n; ok`);
    await mkdir(cwd);
    const env: Record<string, string> = { PATH: '/usr/bin:/bin' };
    HOSTILE.forEach((value, i) => {
      env[`V${i}`] = value;
    });
    // NUL-separated: the working directory, an empty field, each argument, an empty field, the environment.
    const script = `printf '%s\\0' "$PWD" '' "$@" ''; env -0`;
    const argv = apiCommand({ argv: ['sh', '-c', script, 'sh', ...HOSTILE], cwd, env });
    const result = await runArgv(argv);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const fields = result.stdout.split('\0');
    expect(fields.slice(0, 2 + HOSTILE.length + 1)).toEqual([cwd, '', ...HOSTILE, '']);
    const seen = new Map<string, string>();
    for (const line of fields.slice(2 + HOSTILE.length + 1, -1)) {
      const at = line.indexOf('=');
      seen.set(line.slice(0, at), line.slice(at + 1));
    }
    for (const [name, value] of Object.entries(env)) expect(seen.get(name)).toBe(value);
    // `env -i`: nothing from the API's environment; only what a shell sets by itself on top.
    const extra = [...seen.keys()].filter((name) => !(name in env));
    expect(extra.filter((name) => !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(name))).toEqual([]);
    for (const dir of [base, cwd, '/'])
      expect(
        await readFile(join(dir, 'PWNED')).then(
          () => 'found',
          () => 'absent',
        ),
      ).toBe('absent');
  });

  it('runs a program whose name contains "=" or starts with "-"', async () => {
    const cwd = await freshDir('api-names');
    await writeFile(join(cwd, 'a=b'), '#!/bin/sh\necho "ran $0"\n', { mode: 0o755 });
    const eq = await runArgv(apiCommand({ argv: ['./a=b'], cwd, env: {} }));
    expect(eq.stdout).toBe('ran ./a=b\n');
    // A program called `-l` is looked up as a program, not read as an option.
    const dash = await runArgv(apiCommand({ argv: ['-l'], cwd, env: { PATH: cwd } }));
    expect(dash.exitCode).toBe(127);
  });

  it('a cwd that cannot be entered is reported, and apiCommandFailure types it', async () => {
    const base = await freshDir('api-cwd');
    await writeFile(join(base, 'file'), 'x');
    const missing = await runArgv(apiCommand({ argv: ['echo', 'no'], cwd: join(base, 'gone'), env: {} }));
    expect(missing.exitCode).toBe(API_CWD_FAILED_STATUS);
    expect(missing.stdout).toBe('');
    expect(apiCommandFailure(missing.exitCode, missing.stderr, join(base, 'gone'))).toBeInstanceOf(
      NotFoundError,
    );
    const file = await runArgv(apiCommand({ argv: ['echo', 'no'], cwd: join(base, 'file'), env: {} }));
    const fileError = apiCommandFailure(file.exitCode, file.stderr, join(base, 'file'));
    expect(fileError).toBeInstanceOf(NotFoundError);
    expect(fileError?.message).toMatch(/not a directory/);
    // A command that exits 111 by itself is its own result.
    const own = await runArgv(
      apiCommand({ argv: ['sh', '-c', 'echo hi >&2; exit 111'], cwd: base, env: {} }),
    );
    expect(own.exitCode).toBe(111);
    expect(apiCommandFailure(own.exitCode, own.stderr, base)).toBeUndefined();
  });

  it.skipIf(isRoot)(
    'a cwd without search permission is PermissionDeniedError (skipped as root: root enters any directory)',
    async () => {
      const base = await freshDir('api-denied');
      const locked = join(base, 'locked');
      await mkdir(locked, { mode: 0o000 });
      const denied = await runArgv(apiCommand({ argv: ['true'], cwd: locked, env: {} }));
      expect(apiCommandFailure(denied.exitCode, denied.stderr, locked)).toBeInstanceOf(PermissionDeniedError);
    },
  );

  it('refuses what cannot be passed safely, with InvalidArgumentError', () => {
    const ok: StartRequest = { argv: ['true'], cwd: '/', env: {} };
    const bad: StartRequest[] = [
      { ...ok, cwd: 'relative' },
      { ...ok, cwd: '/a\0b' },
      { ...ok, env: { 'BAD-NAME': 'x' } },
      { ...ok, env: { '=x': 'x' } },
      { ...ok, env: { A: 'nul\0' } },
      { ...ok, argv: [] },
      { ...ok, argv: ['-x=y'] },
    ];
    for (const req of bad) expect(() => apiCommand(req)).toThrow(InvalidArgumentError);
  });
});
