/**
 * Commands through the Docker exec API. Killing an exec's client does not stop the process in
 * the container, so each command starts under a tiny sh wrapper that enters `cwd` (reporting
 * a missing one), reports the pid of a forked subshell on the first line of stderr, and execs
 * `setsid -- argv` there: the command leads its own process group with that pid, and a kill is
 * a second exec, `kill -SIG -pgid`, which reaches its whole tree. The wrapper also reports which
 * pipes are the command's stdout and stderr: the kill signals every process still holding one
 * of them too, so a process that left the group (its own `setsid`) but still writes the
 * command's output dies with it. (One that let go of the output is out of reach until the
 * sandbox closes.) The wrapper waits and exits with the command's status, which Docker
 * reports as the exec's exit code.
 *
 * Limitation (shared with every shell): a signal death is seen as status 128+n, so a command
 * that itself exits with 129..159 is reported with that signal's name; its exit code is exact.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { AbortedError, AgentboxError, NotFoundError, SandboxUnavailableError } from '@agentbox/core';
import {
  type ErrorContext,
  fromErrno,
  HOLDER_KILL_SCRIPT,
  holderPipeSet,
  type RawProcess,
  type StartRequest,
  StreamQueue,
  signalName,
} from '@agentbox/core/backend';
import type Docker from 'dockerode';
import { dockerError, dockerMessage, statusOf } from './client.js';
import { DockerDemuxer } from './demux.js';
import type { PauseGate } from './gate.js';

/** What an exec needs to know about its sandbox. */
export interface ExecTarget {
  container: Docker.Container;
  context: ErrorContext;
  /** The sandbox container's pause gate: exec creation waits while a checkpoint has it paused. */
  gate?: PauseGate;
}

export interface OpenExecOptions {
  argv: readonly string[];
  user: string;
  env?: readonly string[];
  workingDir?: string;
  /** Attach stdin (hijacked connection); otherwise the process gets no stdin. */
  stdin: boolean;
}

/**
 * Call `over` once, when an exec's stream is over (its end, close or error), also when it was
 * over before this was called: a connection cut while the exec was starting closes the stream
 * before anyone listens, and a listener added after that would wait forever.
 */
export function whenOver(stream: Duplex, over: (error?: Error) => void): void {
  let done = false;
  const once = (error?: Error) => {
    if (done) return;
    done = true;
    over(error);
  };
  stream.on('end', () => once());
  stream.on('close', () => once());
  stream.on('error', (error: Error) => once(error));
  if (stream.destroyed) queueMicrotask(() => once(stream.errored ?? undefined));
}

/** Create and start an exec; the stream carries the multiplexed output (and stdin when hijacked). */
export async function openExec(
  target: ExecTarget,
  opts: OpenExecOptions,
): Promise<{ exec: Docker.Exec; stream: Duplex }> {
  const gate = target.gate;
  const slots = startSlotsOf(target.container);
  if (!gate) return slots.run(() => createExec(target, opts), target.context);
  // Held until the process runs: Docker answers the start before runc has joined the container,
  // and a pause in between makes that join fail. The gate first: a slot is never held while a
  // checkpoint has this container paused, so other sandboxes' starts go on.
  return gate.shared(() =>
    slots.run(async () => {
      for (let attempt = 0; ; attempt++) {
        const opened = await createExec(target, opts);
        try {
          await untilRunning(opened.exec, target);
          return opened;
        } catch (error) {
          opened.stream.destroy();
          // The daemon deletes an exec whose process the runtime failed to start (gVisor's runsc
          // does, now and then, under load): nothing ran, so it is safe to try once more.
          if (attempt > 0 || !(error instanceof NotFoundError)) throw error;
        }
      }
    }, target.context),
  );
}

/**
 * Exec starts in flight at once per Docker daemon. A burst (hundreds of commands over many
 * sandboxes) slows every start the daemon has in hand until some miss the start bound; queued
 * here, the burst waits its turn instead, and the bound measures the daemon's own start.
 */
const STARTS_PER_DAEMON = 8;

/** How long a start may wait for a slot: a daemon that starts nothing must not queue callers forever. */
const SLOT_WAIT_MS = 60_000;

/** A counting semaphore, first come first served, with a bounded wait. */
export class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  readonly #waitMs: number;
  constructor(size: number, waitMs = SLOT_WAIT_MS) {
    this.#free = size;
    this.#waitMs = waitMs;
  }
  async run<T>(fn: () => Promise<T>, context: ErrorContext): Promise<T> {
    if (this.#free > 0) this.#free--;
    else
      await new Promise<void>((resolve, reject) => {
        const turn = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          this.#waiting.splice(this.#waiting.indexOf(turn), 1);
          reject(
            new SandboxUnavailableError(
              `the Docker daemon started none of the commands ahead of this one within ${this.#waitMs} ms`,
              context,
            ),
          );
        }, this.#waitMs);
        this.#waiting.push(turn);
      });
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** One queue per daemon, by its address (each sandbox has a client of its own). */
const startSlots = new Map<string, Slots>();
function startSlotsOf(container: Docker.Container): Slots {
  const modem = container.modem as { socketPath?: string; protocol?: string; host?: string; port?: number };
  const daemon = modem.socketPath ?? `${modem.protocol}://${modem.host}:${modem.port}`;
  let slots = startSlots.get(daemon);
  if (!slots) {
    slots = new Slots(STARTS_PER_DAEMON);
    startSlots.set(daemon, slots);
  }
  return slots;
}

/** Wait until Docker reports an exec's process started (its pid known) or already done. */
async function untilRunning(exec: Docker.Exec, target: ExecTarget, deadlineMs = 10_000): Promise<void> {
  const started = performance.now();
  let wait = 1;
  for (;;) {
    let info: Docker.ExecInspectInfo;
    try {
      info = await exec.inspect();
    } catch (error) {
      throw await execFailure(target, error);
    }
    // Docker sets Running before it asks runc; the pid is there once the process is.
    if ((info.Pid ?? 0) > 0 || (!info.Running && info.ExitCode !== null)) return;
    if (performance.now() - started > deadlineMs)
      throw new SandboxUnavailableError('docker did not start the command', target.context);
    // A start takes 30–70 ms here: a fine poll finds it soon after (each inspect costs ~1 ms).
    await sleep(wait);
    wait = Math.min(wait * 2, 8);
  }
}

async function createExec(
  target: ExecTarget,
  opts: OpenExecOptions,
): Promise<{ exec: Docker.Exec; stream: Duplex }> {
  let exec: Docker.Exec;
  for (let attempt = 1; ; attempt++) {
    try {
      exec = await target.container.exec({
        Cmd: [...opts.argv],
        User: opts.user,
        Env: opts.env ? [...opts.env] : [],
        WorkingDir: opts.workingDir ?? '/',
        AttachStdin: opts.stdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      break;
    } catch (error) {
      const failure = await execFailure(target, error);
      // Refused as paused while inspect says running: Docker's paused flag lags just after a
      // pause and unpause in quick succession (seen under load on re-attach). Ask again.
      if (
        attempt < PAUSE_LAG_TRIES &&
        !(failure instanceof SandboxUnavailableError) &&
        refusedAsPaused(error)
      ) {
        await sleep(25 * attempt);
        continue;
      }
      throw failure;
    }
  }
  try {
    const stream = (await exec.start({ hijack: opts.stdin, stdin: opts.stdin, Tty: false })) as Duplex;
    return { exec, stream };
  } catch (error) {
    throw await execFailure(target, error);
  }
}

/** Tries at exec creation while Docker's paused flag lags behind an unpause (25 ms, 50, ... apart). */
const PAUSE_LAG_TRIES = 6;

function refusedAsPaused(error: unknown): boolean {
  return statusOf(error) === 409 && /is paused/i.test(dockerMessage(error));
}

/** An exec that could not be created: a stopped or removed container is SANDBOX_UNAVAILABLE. */
async function execFailure(target: ExecTarget, error: unknown): Promise<AgentboxError> {
  const status = statusOf(error);
  if (status === 404 || status === 409) {
    const state = await target.container.inspect().then(
      (info) => info.State?.Status ?? 'unknown',
      () => 'removed',
    );
    if (state !== 'running')
      return new SandboxUnavailableError(`the sandbox container is ${state}; it cannot run commands`, {
        ...target.context,
        cause: error,
      });
  }
  return dockerError(error, target.context);
}

/** The exit code of a finished exec (the stream may close a moment before Docker marks it done). */
export async function execExitCode(
  exec: Docker.Exec,
  target: ExecTarget,
  deadlineMs = 10_000,
): Promise<number> {
  const started = performance.now();
  let wait = 2;
  for (;;) {
    let info: Docker.ExecInspectInfo;
    try {
      info = await exec.inspect();
    } catch (error) {
      throw await execFailure(target, error);
    }
    if (!info.Running && info.ExitCode !== null) return info.ExitCode;
    if (performance.now() - started > deadlineMs)
      throw new SandboxUnavailableError(
        'docker did not report the exit of a finished command',
        target.context,
      );
    await sleep(wait);
    wait = Math.min(wait * 2, 100);
  }
}

export interface CollectedExec {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** Run an internal command (not a user command) to the end and collect its output. */
export async function runExec(
  target: ExecTarget,
  opts: Omit<OpenExecOptions, 'stdin'> & {
    stdin?: Uint8Array | AsyncIterable<Uint8Array>;
    signal?: AbortSignal;
  },
): Promise<CollectedExec> {
  if (opts.signal?.aborted) throw new AbortedError('aborted', target.context);
  const { exec, stream } = await openExec(target, { ...opts, stdin: opts.stdin !== undefined });
  let cutShort = false;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const demux = new DockerDemuxer((type, chunk) => (type === 'stdout' ? out : err).push(chunk));
  const onAbort = () => stream.destroy(new AbortedError('aborted', target.context));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => demux.push(chunk));
      whenOver(stream, (error) => (error ? reject(error) : resolve()));
    });
    if (opts.stdin !== undefined) {
      const source = opts.stdin instanceof Uint8Array ? [opts.stdin] : opts.stdin;
      // The command may end before it has read everything (cat on a full disk): then no write
      // would ever drain, and its output's end is the signal to stop feeding it.
      const ended = new Promise<false>((resolve) => whenOver(stream, () => resolve(false)));
      try {
        for await (const chunk of source) {
          const wrote = await Promise.race([
            writeTo(stream, chunk).then(
              () => true,
              () => false,
            ),
            ended,
          ]);
          if (!wrote) {
            cutShort = true;
            break;
          }
        }
      } catch (error) {
        // The command must not take a cut-off input for the whole of it.
        done.catch(() => {});
        stream.destroy();
        throw error;
      }
      if (cutShort) stream.destroy();
      else stream.end();
    }
    await done;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (opts.signal?.aborted) throw new AbortedError('aborted', target.context);
  const exitCode = await execExitCode(exec, target);
  if (cutShort && exitCode === 0)
    throw new AgentboxError(`${opts.argv[0]} ended before it read all of its input`, target.context);
  return { exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}

/** Write with backpressure; rejects if the stream is gone. */
export function writeTo(stream: Duplex, chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.destroyed || stream.writableEnded) {
      reject(Object.assign(new Error('stdin is closed: the process has ended'), { code: 'EPIPE' }));
      return;
    }
    const ok = stream.write(chunk, (error) => {
      if (error && !ok) reject(error);
    });
    if (ok) {
      resolve();
      return;
    }
    const cleanup = () => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(Object.assign(new Error('stdin is closed: the process has ended'), { code: 'EPIPE' }));
    };
    stream.on('drain', onDrain);
    stream.on('close', onClose);
  });
}

/**
 * The wrapper: $1 marker nonce, $2 cwd, $3 setsid path, then the argv. The subshell is forked
 * (it is not the wrapper's last command), so it is never a process-group leader and `setsid`
 * makes it one without forking again: the pid it reports is the command's pid and pgid. The
 * marker also carries the wrapper's pid and the device:inode of its stdout and stderr pipes.
 * `--` ends setsid's options: an argv[0] starting with `-` is a command name (exit 127).
 */
const WRAPPER = [
  'n=$1 d=$2 s=$3; shift 3',
  // The wrapper's own stderr goes nowhere (a shell reports "Killed" for a killed child); fd 3 keeps the real one.
  'exec 3>&2 2>/dev/null',
  'if ! cd -P -- "$d"; then',
  '  if [ ! -e "$d" ]; then k=ENOENT; elif [ ! -d "$d" ]; then k=ENOTDIR; else k=EACCES; fi',
  `  printf '%sC %s\n' "$n" "$k" >&3`,
  '  exit 0',
  'fi',
  // Through /proc/self (fd 5 a copy of stdout): a wrapper that is not dumpable may not read /proc/$$/fd.
  'exec 5>&1; w=$$ i=$(stat -L -c %d:%i /proc/self/fd/5 /proc/self/fd/3); exec 5>&-',
  '(',
  '  read -r p x </proc/self/stat',
  `  printf '%sS %s %s %s\n' "$n" "$p" "$w" "$(echo $i)" >&3`,
  '  exec "$s" -- "$@" 2>&3 3>&-',
  ')',
  'r=$?',
  'exit $r',
].join('\n');

/** How long after the command's exit a follow-up signal still goes to its group. */
const AFTER_EXIT_SIGNAL_MS = 10_000;

/** Signal a command's group and whoever holds its output pipes (core's HOLDER_KILL_SCRIPT), with one exec. */
export async function killInContainer(
  target: ExecTarget,
  user: string,
  signal: string,
  pgid: number,
  pipes: readonly string[],
): Promise<void> {
  // Again, a moment later, if a try finds the daemon unreachable: right after connections
  // broke, a request may still go down one of the dead pooled sockets.
  for (let attempt = 0; ; attempt++) {
    try {
      return await killOnce(target, user, signal, pgid, pipes);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof SandboxUnavailableError)) throw error;
      await sleep(50 * (attempt + 1));
    }
  }
}

async function killOnce(
  target: ExecTarget,
  user: string,
  signal: string,
  pgid: number,
  pipes: readonly string[],
): Promise<void> {
  await runExec(target, {
    argv: [
      '/bin/sh',
      '-c',
      HOLDER_KILL_SCRIPT,
      'agentbox-kill',
      signal.replace(/^SIG/, ''),
      String(pgid),
      '',
      ...pipes,
    ],
    user,
  });
}

export interface WrappedExecOptions {
  target: ExecTarget;
  user: string;
  /** Absolute path of `setsid` in the image. */
  setsid: string;
  /** The shell that runs the wrapper (default /bin/sh): a session's hidden copy, see hidden-shell.ts. */
  shell?: string | undefined;
  /**
   * A readable `env` the command is exec'd through, with the hidden copies: BusyBox may run an
   * applet by re-executing itself, and a command exec'd from the execute-only copy would stay
   * undumpable, out of reach of the kill that looks for its processes in /proc.
   */
  env?: string | undefined;
  /** Random per sandbox; starts with 0x1E so that no ordinary output looks like it. */
  nonce: string;
}

export function newNonce(): string {
  return `\x1eagentbox-${randomBytes(12).toString('hex')}`;
}

/** Start a user command; resolves once it runs (its pid is known), rejects for a bad cwd. */
export async function startWrapped(
  opts: WrappedExecOptions,
  req: StartRequest,
  signal: AbortSignal | undefined,
): Promise<WrappedProcess> {
  const context = opts.target.context;
  if (signal?.aborted) throw new AbortedError('aborted before the command started', context);
  const env = Object.entries(req.env).map(([k, v]) => `${k}=${v}`);
  const { exec, stream } = await openExec(opts.target, {
    argv: [
      opts.shell ?? '/bin/sh',
      '-c',
      WRAPPER,
      'agentbox',
      opts.nonce,
      req.cwd,
      opts.setsid,
      ...(opts.env ? [opts.env, '--'] : []),
      ...req.argv,
    ],
    user: opts.user,
    env,
    workingDir: '/',
    stdin: true,
  });
  const process = new WrappedProcess(opts, exec, stream, req.cwd);
  const onAbort = () => {
    process.kill('SIGKILL').catch(() => {});
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await process.started;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (signal?.aborted) {
    await process.kill('SIGKILL').catch(() => {});
    throw new AbortedError('aborted while the command was starting', context);
  }
  return process;
}

const MAX_MARKER_BYTES = 256;
/** How long the kill of a command cut off from the library may take before the caller hears of it. */
const CUT_KILL_MS = 5_000;

export class WrappedProcess implements RawProcess {
  readonly stdout = new StreamQueue();
  readonly stderr = new StreamQueue();
  readonly exit: Promise<{ exitCode: number | null; signal: string | null }>;
  /** Resolves with the pid once the command runs; rejects if it never does. */
  readonly started: Promise<number>;
  readonly #opts: WrappedExecOptions;
  readonly #exec: Docker.Exec;
  readonly #stream: Duplex;
  readonly #nonce: Buffer;
  #marker: Buffer | undefined = Buffer.alloc(0);
  #pid: number | undefined;
  /** The wrapper's pid and the device:inode of the command's stdout and stderr pipes. */
  #pipes: { owner: number; ids: string[] } | undefined;
  #exited = false;
  #exitedAt = 0;
  /** A signal of ours has gone out (or is going out) to the group. */
  #signalled = false;
  #killed = false;
  #resolveStarted!: (pid: number) => void;
  #rejectStarted!: (error: unknown) => void;
  #resolveExit!: (exit: { exitCode: number | null; signal: string | null }) => void;
  #rejectExit!: (error: unknown) => void;

  readonly #cwd: string;

  constructor(opts: WrappedExecOptions, exec: Docker.Exec, stream: Duplex, cwd: string) {
    this.#opts = opts;
    this.#cwd = cwd;
    this.#exec = exec;
    this.#stream = stream;
    this.#nonce = Buffer.from(opts.nonce, 'latin1');
    this.started = new Promise((resolve, reject) => {
      this.#resolveStarted = resolve;
      this.#rejectStarted = reject;
    });
    this.started.catch(() => {});
    this.exit = new Promise((resolve, reject) => {
      this.#resolveExit = resolve;
      this.#rejectExit = reject;
    });
    this.exit.catch(() => {});

    const demux = new DockerDemuxer((type, chunk) => {
      if (type === 'stdout') this.stdout.push(chunk);
      else this.#onStderr(chunk);
    });
    stream.on('data', (chunk: Buffer) => demux.push(chunk));
    whenOver(stream, () => {
      this.#flushMarker();
      this.stdout.end();
      this.stderr.end();
      this.#finish();
    });
  }

  /** The first line of stderr is the wrapper's marker; everything after it is the command's. */
  #onStderr(chunk: Buffer): void {
    if (this.#marker === undefined) {
      this.stderr.push(chunk);
      return;
    }
    const buffered = Buffer.concat([this.#marker, chunk]);
    const nl = buffered.indexOf(0x0a);
    const head = nl < 0 ? buffered : buffered.subarray(0, nl);
    const prefixLen = Math.min(head.length, this.#nonce.length);
    if (
      !head.subarray(0, prefixLen).equals(this.#nonce.subarray(0, prefixLen)) ||
      head.length > MAX_MARKER_BYTES
    ) {
      // Not our marker: the wrapper itself failed to run. Pass it on as output.
      this.#marker = undefined;
      this.stderr.push(buffered);
      return;
    }
    if (nl < 0) {
      this.#marker = buffered;
      return;
    }
    this.#marker = undefined;
    const line = head.subarray(this.#nonce.length).toString('latin1');
    const rest = buffered.subarray(nl + 1);
    const [kind, value = '', wrapper = '', ...pipes] = line.split(' ');
    if (kind === 'S' && /^\d+$/.test(value)) {
      this.#pid = Number(value);
      if (/^\d+$/.test(wrapper) && pipes.length > 0 && pipes.every((p) => /^\d+:\d+$/.test(p)))
        this.#pipes = { owner: Number(wrapper), ids: pipes };
      this.#resolveStarted(this.#pid);
    } else if (kind === 'C') {
      this.#rejectStarted(
        fromErrno(
          value,
          `working directory ${this.#cwd} ${value === 'EACCES' ? 'is not accessible' : value === 'ENOTDIR' ? 'is not a directory' : 'does not exist'}`,
          { ...this.#opts.target.context, subject: this.#cwd },
        ),
      );
    }
    this.stderr.push(rest);
  }

  #flushMarker(): void {
    if (this.#marker && this.#marker.length > 0) this.stderr.push(this.#marker);
    this.#marker = undefined;
  }

  async #finish(): Promise<void> {
    try {
      const code = await execExitCode(this.#exec, this.#opts.target);
      this.#settle(code);
    } catch (error) {
      await this.#cutOff(error);
    }
  }

  /**
   * The output ended but Docker cannot say how the command exited (the daemon unreachable, or no
   * exit reported in time: the connection carrying the output broke while the command ran). The
   * command is stopped, not left running unseen (when the daemon can be reached for it, within
   * a bound), and the caller gets the typed error.
   */
  async #cutOff(error: unknown): Promise<void> {
    this.#exited = true;
    if (this.#pid !== undefined) {
      const pipes = this.#pipes ? [holderPipeSet('!', [this.#pipes.owner], this.#pipes.ids)] : [];
      const kill = killInContainer(this.#opts.target, this.#opts.user, 'SIGKILL', this.#pid, pipes);
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([
        kill.catch(() => {}),
        new Promise((resolve) => {
          bound = setTimeout(resolve, CUT_KILL_MS);
        }),
      ]);
      clearTimeout(bound);
    }
    this.#rejectStarted(error);
    this.#rejectExit(error);
  }

  #settle(code: number): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#exitedAt = Date.now();
    if (this.#pid === undefined) {
      // The wrapper never reported the command: it could not run at all (no /bin/sh, no setsid...).
      this.#rejectStarted(
        new SandboxUnavailableError(
          `the command wrapper failed to start (exit ${code})`,
          this.#opts.target.context,
        ),
      );
    }
    const name = code > 128 ? signalName(code - 128) : null;
    this.#resolveExit({ exitCode: name ? null : code, signal: name });
  }

  /** The command's pid (its group's id), once it runs. */
  get pid(): number | undefined {
    return this.#pid;
  }

  /**
   * This process as a session's runner, for the holder kill: a command whose parent it is has its output on
   * these pipes, and the runner and its wrapper are spared.
   */
  get pipeSet(): string | undefined {
    if (this.#pid === undefined || !this.#pipes) return undefined;
    return holderPipeSet(this.#pid, [this.#pid, this.#pipes.owner], this.#pipes.ids);
  }

  writeStdin(chunk: Uint8Array): Promise<void> {
    return writeTo(this.#stream, chunk);
  }

  async closeStdin(): Promise<void> {
    if (!this.#stream.destroyed && !this.#stream.writableEnded) this.#stream.end();
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    // A leader that died of our signal (SIGTERM in a kill grace) may leave members of its group
    // behind: a follow-up signal right after still reaches them (the group id cannot be reused
    // while they live, and a fresh pid that soon is out of reach).
    const gone = () =>
      this.#exited && !(this.#signalled && Date.now() - this.#exitedAt < AFTER_EXIT_SIGNAL_MS);
    if (gone()) return;
    const pid =
      this.#pid ??
      (await Promise.race([this.started, this.exit.then(() => undefined)]).catch(() => undefined));
    if (pid === undefined || gone()) return;
    this.#signalled = true;
    const pipes = this.#pipes ? [holderPipeSet('!', [this.#pipes.owner], this.#pipes.ids)] : [];
    await killInContainer(this.#opts.target, this.#opts.user, signal, pid, pipes);
    if (!this.#killed) {
      this.#killed = true;
      this.#watchAfterKill();
    }
  }

  /**
   * After a kill, a process that left the group may still hold the output pipes open, so the
   * stream would not end: watch Docker for the wrapper's exit instead, then give the streams a
   * moment before cutting them.
   */
  async #watchAfterKill(): Promise<void> {
    let wait = 50;
    while (!this.#exited) {
      await sleep(wait);
      wait = Math.min(wait * 2, 1_000);
      const info = await this.#exec.inspect().catch(() => undefined);
      if (info && !info.Running && info.ExitCode !== null) {
        this.#settle(info.ExitCode);
        break;
      }
      if (!info) break;
    }
    setTimeout(() => this.#stream.destroy(), 3_000).unref();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
