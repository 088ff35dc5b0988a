/**
 * The exec semantics written once: a backend only starts a {@link RawProcess}; this module
 * feeds stdin, drains and caps output, enforces timeouts and aborts by killing the whole
 * process tree, and turns the outcome into an ExecResult or a typed error.
 */
import {
  AbortedError,
  AgentboxError,
  type ErrorContext,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  SandboxClosedError,
  TimeoutError,
  toAgentboxError,
  UnsupportedError,
} from './errors.js';
import { DEFAULT_MAX_OUTPUT_BYTES, decodeUtf8, encodeUtf8, OutputBuffer } from './output.js';
import { parseSignal, type SignalInput, type SignalName, signalNumber } from './signals.js';
import { StreamQueue } from './stream-queue.js';
import type { Command, ExecHandle, ExecResult, SpawnOptions, StdinSource } from './types.js';
import { invalidArgument } from './validate.js';

/** What a backend is asked to start. `cwd` is absolute; `env` is complete (defaults merged). */
export interface StartRequest {
  argv: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
}

/** A process started by a backend, as the backend sees it. */
export interface RawProcess {
  readonly stdout: AsyncIterable<Uint8Array>;
  readonly stderr: AsyncIterable<Uint8Array>;
  /** Resolves once the chunk is accepted (backpressure). */
  writeStdin(chunk: Uint8Array): Promise<void>;
  closeStdin(): Promise<void>;
  /**
   * Signal the command's whole process tree (its process group or session), not just its
   * leader. `signal` has passed {@link parseSignal}: a Linux name from the table, never free text.
   */
  kill(signal: SignalName): Promise<void>;
  /** Exit of the command: a code, or the name of the signal that ended it. */
  readonly exit: Promise<{ exitCode: number | null; signal: string | null }>;
}

/** Environment every command starts with; the caller's `env` overrides any of it. */
export const DEFAULT_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  TERM: 'dumb',
  // Pagers and editors would otherwise hang a non-interactive command forever.
  PAGER: 'cat',
  GIT_PAGER: 'cat',
  GIT_EDITOR: 'true',
  EDITOR: 'true',
  VISUAL: 'true',
  GIT_TERMINAL_PROMPT: '0',
  DEBIAN_FRONTEND: 'noninteractive',
};

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function buildEnv(
  base: Readonly<Record<string, string>>,
  extra: Readonly<Record<string, string>> | undefined,
  context: ErrorContext,
): Record<string, string> {
  const env = { ...DEFAULT_ENV, ...base };
  for (const [name, value] of Object.entries(extra ?? {})) {
    if (!ENV_NAME.test(name)) throw invalidArgument(`env.${name}`, 'is not a valid variable name', context);
    if (typeof value !== 'string' || value.includes('\0'))
      throw invalidArgument(`env.${name}`, 'must be a string without NUL bytes', context);
    env[name] = value;
  }
  return env;
}

/** A string runs through `sh -c`; an array runs as argv with no shell. */
export function normalizeCommand(cmd: Command, context: ErrorContext): readonly string[] {
  if (typeof cmd === 'string') {
    if (cmd.includes('\0')) throw invalidArgument('command', 'contains a NUL byte', context);
    return ['sh', '-c', cmd];
  }
  if (!Array.isArray(cmd) || cmd.length === 0 || cmd[0] === '')
    throw invalidArgument('command', 'must be a non-empty string or a non-empty argv array', context);
  for (const [index, arg] of cmd.entries()) {
    if (typeof arg !== 'string') throw invalidArgument(`command.${index}`, 'must be a string', context);
    if (arg.includes('\0')) throw invalidArgument(`command.${index}`, 'contains a NUL byte', context);
  }
  return [...cmd];
}

/** Exit status of an {@link apiCommand} whose working directory could not be entered. */
export const API_CWD_FAILED_STATUS = 111;
const API_CWD_MARKER = 'agentbox-cwd';

// $0 is the marker, $1 the cwd, the rest `-- NAME=value... program args...` for `env -i`.
const API_WRAPPER = [
  'cd -- "$1" 2>/dev/null || {',
  ' if [ -d "$1" ]; then r=denied; elif [ -e "$1" ]; then r=not-a-directory; else r=missing; fi;',
  ` printf '%s %s\\n' "$0" "$r" >&2; exit ${API_CWD_FAILED_STATUS}; }`,
  'shift; exec env -i "$@"',
].join('\n');

/**
 * For a backend whose API takes an argv and no working directory or environment of its own
 * (or only ones we would have to glue from user values): the argv to hand that API so the
 * command runs in `cwd` with exactly `env`. Every user value travels as its own argument,
 * never inside shell text: `/bin/sh -c <fixed script> agentbox-cwd <cwd> -- NAME=value... argv...`,
 * where the script enters the directory and replaces itself with `env -i`. A cwd that cannot be
 * entered ends with {@link API_CWD_FAILED_STATUS} and a line {@link apiCommandFailure} reads.
 */
export function apiCommand(req: StartRequest, context: ErrorContext = {}): string[] {
  const argv = normalizeCommand(req.argv, context);
  if (typeof req.cwd !== 'string' || !req.cwd.startsWith('/') || req.cwd.includes('\0'))
    throw invalidArgument('cwd', 'must be an absolute path without NUL bytes', context);
  const assignments: string[] = [];
  for (const [name, value] of Object.entries(req.env)) {
    if (!ENV_NAME.test(name)) throw invalidArgument(`env.${name}`, 'is not a valid variable name', context);
    if (typeof value !== 'string' || value.includes('\0'))
      throw invalidArgument(`env.${name}`, 'must be a string without NUL bytes', context);
    assignments.push(`${name}=${value}`);
  }
  // `env` takes a word with `=` for one more assignment, so such a program is started by `sh`.
  let program = argv;
  if (argv[0]!.includes('=')) {
    // `exec` in bash and busybox reads a leading `-` as an option, and dash has no `--` for it.
    if (argv[0]!.startsWith('-'))
      throw invalidArgument('command.0', 'may not both start with "-" and contain "="', context);
    program = ['/bin/sh', '-c', 'exec "$0" "$@"', ...argv];
  }
  return ['/bin/sh', '-c', API_WRAPPER, API_CWD_MARKER, req.cwd, '--', ...assignments, ...program];
}

/**
 * The typed error for an {@link apiCommand} that never started because its cwd could not be
 * entered, judged from its exit status and the start of its stderr; undefined for anything else.
 */
export function apiCommandFailure(
  exitCode: number | null,
  stderr: string | Uint8Array,
  cwd: string,
  context: ErrorContext = {},
): AgentboxError | undefined {
  if (exitCode !== API_CWD_FAILED_STATUS) return undefined;
  const text = typeof stderr === 'string' ? stderr : decodeUtf8(stderr.subarray(0, 64));
  const reason = new RegExp(`^${API_CWD_MARKER} (missing|not-a-directory|denied)\\n`).exec(text)?.[1];
  const where = { ...context, subject: cwd };
  switch (reason) {
    case 'missing':
      return new NotFoundError(
        `working directory ${cwd} does not exist: create it first, or pass another cwd`,
        where,
      );
    case 'not-a-directory':
      return new NotFoundError(`working directory ${cwd} is not a directory`, where);
    case 'denied':
      return new PermissionDeniedError(`working directory ${cwd} is not accessible`, where);
    default:
      return undefined;
  }
}

export async function* stdinChunks(source: StdinSource): AsyncGenerator<Uint8Array> {
  if (typeof source === 'string') {
    if (source.length > 0) yield encodeUtf8(source);
    return;
  }
  if (source instanceof Uint8Array) {
    if (source.length > 0) yield source;
    return;
  }
  for await (const chunk of source) {
    if (chunk.length > 0) yield typeof chunk === 'string' ? encodeUtf8(chunk) : chunk;
  }
}

export interface RunOptions extends SpawnOptions {
  /** exec(): stdin is closed after the given input (or at once). spawn(): stays open for writes when none is given. */
  closeStdinAfterInput: boolean;
  /** exec(): nobody reads the live streams, so they are not buffered. */
  streaming: boolean;
  /** Why the backend cannot take stdin writes or deliver a chosen signal (its capabilities), if it cannot. */
  lacking?: { stdin?: string | undefined; kill?: string | undefined };
  /** Asked when the command died of SIGKILL: did the sandbox's memory limit kill a process since last asked? */
  oomKilled?: (() => Promise<boolean>) | undefined;
}

/** How long the OOM question may take before the answer is taken as no. */
const OOM_CHECK_MS = 5_000;

/** How long to wait for output pipes to close (or a last kill to go out) after a killed command has exited. */
const DRAIN_AFTER_KILL_MS = 2_000;

type StopReason = 'timeout' | 'abort' | 'closed';

/** Failures that mean the command no longer takes input (it exited, or closed its stdin). */
function isClosedPipe(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_WRITE_AFTER_END')
    return true;
  return error instanceof Error && !(error instanceof AgentboxError) && /\bEPIPE\b/.test(error.message);
}

export class ProcessHandle implements ExecHandle {
  readonly #context: ErrorContext;
  readonly #command: readonly string[];
  readonly #started: number = performance.now();
  readonly #raw: Promise<RawProcess>;
  readonly #out: OutputBuffer;
  readonly #err: OutputBuffer;
  // What spawn's caller reads live; the OutputBuffers bound memory, so no backpressure here.
  readonly #liveOut = new StreamQueue(Number.POSITIVE_INFINITY);
  readonly #liveErr = new StreamQueue(Number.POSITIVE_INFINITY);
  readonly #result: Promise<ExecResult>;
  /** Aborts a start still in progress (the deadline passed, the caller aborted, the sandbox closed). */
  readonly #startAbort = new AbortController();
  readonly #killGraceMs: number;
  #stopReason: StopReason | undefined;
  /** The started process, once known: a stop before that is applied when it arrives. */
  #running: RawProcess | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;
  #grace: ReturnType<typeof setTimeout> | undefined;
  #killSent: Promise<void> | undefined;
  /** The sandbox is closing: no grace for anything any more. */
  #closing = false;
  #closeDone!: () => void;
  readonly #closed = new Promise<void>((resolve) => {
    this.#closeDone = resolve;
  });
  #exited = false;
  #stdinClosed = false;
  #stdinChain: Promise<void> = Promise.resolve();
  readonly #onAbort = () => this.#stop('abort');

  /**
   * `start` gets a signal that aborts when the start should give up. The deadline (`timeoutMs`)
   * runs from this call, so waiting for a free channel or slot and starting count against it.
   */
  constructor(
    command: readonly string[],
    start: (signal: AbortSignal) => Promise<RawProcess>,
    private readonly options: RunOptions,
    context: ErrorContext,
  ) {
    this.#command = command;
    this.#context = { ...context, subject: command.join(' ').slice(0, 200) };
    const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    if (!Number.isInteger(max) || max < 0)
      throw invalidArgument('maxOutputBytes', 'must be a non-negative integer', context);
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs <= 0))
      throw invalidArgument('timeoutMs', 'must be a positive number', context);
    const grace = options.killGraceMs ?? 0;
    if (!Number.isFinite(grace) || grace < 0)
      throw invalidArgument('killGraceMs', 'must be a non-negative number', context);
    this.#killGraceMs = grace;
    this.#out = new OutputBuffer(max);
    this.#err = new OutputBuffer(max);
    if (!options.streaming) this.#stopUnreadStreams();
    if (options.signal?.aborted) {
      this.#stopReason = 'abort';
      this.#raw = Promise.reject(
        new AbortedError('aborted before the command started', {
          ...this.#context,
          cause: options.signal.reason,
        }),
      );
    } else {
      if (timeoutMs !== undefined) this.#deadline = setTimeout(() => this.#stop('timeout'), timeoutMs);
      options.signal?.addEventListener('abort', this.#onAbort, { once: true });
      this.#raw = start(this.#startAbort.signal).catch((error: unknown) => {
        throw this.#startFailure(error);
      });
    }
    this.#raw.catch(() => {});
    this.#result = this.#run();
    this.#result.catch(() => {});
  }

  get stdout(): AsyncIterable<Uint8Array> {
    return this.#liveOut;
  }
  get stderr(): AsyncIterable<Uint8Array> {
    return this.#liveErr;
  }

  writeStdin(data: string | Uint8Array): Promise<void> {
    const context = { ...this.#context, operation: 'writeStdin' };
    if (typeof data !== 'string' && !(data instanceof Uint8Array))
      return Promise.reject(new InvalidArgumentError('writeStdin takes a string or a Uint8Array', context));
    const lacking = this.options.lacking?.stdin;
    if (lacking)
      return Promise.reject(
        new UnsupportedError(
          `stdin is not supported: ${lacking}. Pass the whole input as exec's stdin option, or write it to a file`,
          context,
        ),
      );
    const bytes = typeof data === 'string' ? encodeUtf8(data) : data;
    const next = this.#stdinChain.then(async () => {
      if (this.#stdinClosed) throw new InvalidArgumentError('stdin is already closed', context);
      const raw = await this.#usable(context);
      if (bytes.length === 0) return;
      try {
        await raw.writeStdin(bytes);
      } catch (error) {
        throw this.#stdinFailure(error, context);
      }
    });
    this.#stdinChain = next.catch(() => {});
    return next;
  }

  closeStdin(): Promise<void> {
    const context = { ...this.#context, operation: 'closeStdin' };
    const next = this.#stdinChain.then(async () => {
      if (this.#stdinClosed) return;
      this.#stdinClosed = true;
      const raw = await this.#usable(context);
      try {
        await raw.closeStdin();
      } catch (error) {
        // Closing the input of a command that has already let go of it is what the caller wanted.
        if (this.#exited || isClosedPipe(error)) return;
        throw toAgentboxError(error, context);
      }
    });
    this.#stdinChain = next.catch(() => {});
    return next;
  }

  async kill(signal: SignalInput = 'SIGTERM'): Promise<void> {
    const context = { ...this.#context, operation: 'kill' };
    const name = parseSignal(signal, context);
    const lacking = this.options.lacking?.kill;
    if (lacking)
      throw new UnsupportedError(
        `kill is not supported: ${lacking}. Stop the command with an AbortSignal or timeoutMs instead`,
        context,
      );
    const raw = await this.#usable(context);
    try {
      await raw.kill(name);
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code === 'ERR_UNKNOWN_SIGNAL')
        throw new UnsupportedError(`${name} cannot be sent from this host`, { ...context, cause: error });
      throw toAgentboxError(error, context);
    }
  }

  /**
   * The sandbox's close has finished: its resources are gone, so a command still waiting on its
   * transport (a stream some runtimes keep open after the container is removed) settles now.
   */
  sandboxClosed(): void {
    this.#closeDone();
  }

  /** The sandbox is closing: kill the command's tree at once; the result is a SandboxClosedError. */
  stopForClose(): void {
    this.#closing = true;
    if (this.#stopReason && this.#running) {
      // Already being stopped (a timeout in its grace): closing does not wait for the grace.
      this.#killNow(this.#running);
      return;
    }
    this.#stop('closed');
  }

  /** Settles (never rejects) when the command has ended, whatever the outcome. */
  get settled(): Promise<void> {
    return this.#result.then(
      () => {},
      () => {},
    );
  }

  wait(): Promise<ExecResult> {
    // A caller waiting for the result without having started to read the streams will not read them.
    this.#stopUnreadStreams();
    return this.#result;
  }

  /** The started process for a stdin or kill call, or the typed reason there is none to use. */
  async #usable(context: ErrorContext): Promise<RawProcess> {
    if (this.#stopReason === 'closed')
      throw new SandboxClosedError('the sandbox was closed while the command ran', context);
    try {
      return await this.#raw;
    } catch (error) {
      throw toAgentboxError(error, context);
    }
  }

  #stdinFailure(error: unknown, context: ErrorContext): AgentboxError {
    if (error instanceof AgentboxError) return toAgentboxError(error, context);
    if (this.#stopReason === 'closed')
      return new SandboxClosedError('the sandbox was closed while the command ran', {
        ...context,
        cause: error,
      });
    if (this.#exited || isClosedPipe(error))
      return new InvalidArgumentError('stdin is closed: the command has ended or closed its input', {
        ...context,
        cause: error,
      });
    return toAgentboxError(error, context);
  }

  /** A start that failed because we stopped it reports why we stopped it. */
  #startFailure(error: unknown): AgentboxError {
    const context = this.#context;
    switch (this.#stopReason) {
      case 'timeout':
        return this.#timeoutError();
      case 'abort':
        return new AbortedError('aborted while the command was starting', {
          ...context,
          cause: this.options.signal?.reason ?? error,
        });
      case 'closed':
        return new SandboxClosedError('the sandbox was closed while the command was starting', {
          ...context,
          cause: error,
        });
      default:
        return toAgentboxError(error, context);
    }
  }

  #timeoutError(): TimeoutError {
    const timeoutMs = this.options.timeoutMs!;
    return new TimeoutError(
      `command timed out after ${timeoutMs} ms and its process tree was killed; ` +
        'raise timeoutMs if it needs longer (what it printed so far is in the error: stdout, stderr)',
      timeoutMs,
      this.#partial(),
      this.#context,
    );
  }

  #stop(reason: StopReason): void {
    if (this.#stopReason) return;
    this.#stopReason = reason;
    if (this.#running) this.#stopTree(this.#running);
    // Not started yet: give up the start; a start that completes anyway is stopped in #run.
    else this.#startAbort.abort(new AbortedError(`command stopped (${reason})`, this.#context));
  }

  /** SIGTERM to the tree and SIGKILL after the grace; or SIGKILL at once (no grace, or closing). */
  #stopTree(raw: RawProcess): void {
    if (this.#closing || this.#killGraceMs === 0) {
      this.#killNow(raw);
      return;
    }
    raw.kill('SIGTERM').catch(() => {});
    this.#grace = setTimeout(() => this.#killNow(raw), this.#killGraceMs);
  }

  #killNow(raw: RawProcess): Promise<void> {
    if (this.#grace) clearTimeout(this.#grace);
    this.#killSent ??= raw.kill('SIGKILL').catch(() => {});
    return this.#killSent;
  }

  #stopUnreadStreams(): void {
    for (const live of [this.#liveOut, this.#liveErr])
      live.stopIfUnread(
        new InvalidArgumentError(
          'this output stream is not buffered: start reading stdout/stderr before calling wait(), or use exec()',
          this.#context,
        ),
      );
  }

  #partial() {
    const stdoutBytes = this.#out.bytes();
    const stderrBytes = this.#err.bytes();
    return {
      stdoutBytes,
      stderrBytes,
      stdout: decodeUtf8(stdoutBytes),
      stderr: decodeUtf8(stderrBytes),
      durationMs: performance.now() - this.#started,
    };
  }

  #cleanup(): void {
    if (this.#deadline) clearTimeout(this.#deadline);
    if (this.#grace) clearTimeout(this.#grace);
    this.options.signal?.removeEventListener('abort', this.#onAbort);
  }

  async #run(): Promise<ExecResult> {
    let raw: RawProcess;
    try {
      raw = await this.#raw;
    } catch (error) {
      this.#cleanup();
      throw error;
    }
    this.#running = raw;
    if (this.#stopReason) this.#stopTree(raw);

    const drain = async (
      stream: AsyncIterable<Uint8Array>,
      buffer: OutputBuffer,
      live: StreamQueue,
      cb?: (c: Uint8Array) => void,
    ) => {
      try {
        for await (const chunk of stream) {
          buffer.push(chunk);
          live.push(chunk);
          cb?.(chunk);
        }
      } finally {
        live.end();
      }
    };
    const drained = Promise.all([
      drain(raw.stdout, this.#out, this.#liveOut, this.options.onStdout),
      drain(raw.stderr, this.#err, this.#liveErr, this.options.onStderr),
    ]);
    drained.catch(() => {});
    this.#feedStdin();

    try {
      // A command stopped by close() may see its transport go first: that is the close, not a failure.
      const killedByClose = { exitCode: null, signal: 'SIGKILL' };
      const exit = await Promise.race([
        raw.exit.catch((error: unknown) => {
          if (this.#stopReason === 'closed') return killedByClose;
          throw error;
        }),
        this.#closed.then(() => killedByClose),
      ]);
      this.#exited = true;
      if (this.#stopReason === 'closed')
        throw new SandboxClosedError('the sandbox was closed while the command ran', this.#context);
      if (this.#stopReason) {
        // The leader has gone (in its grace, or killed): what is left of its tree goes too.
        await Promise.race([this.#killNow(raw), delay(DRAIN_AFTER_KILL_MS)]);
        // Killed by us: do not let a pipe held open by an unreachable descendant hang the caller.
        await Promise.race([drained.catch(() => {}), delay(DRAIN_AFTER_KILL_MS)]);
        if (this.#stopReason === 'timeout') throw this.#timeoutError();
        throw new AbortedError('command aborted', { ...this.#context, cause: this.options.signal?.reason });
      }
      await drained;
      const stdoutBytes = this.#out.bytes();
      const stderrBytes = this.#err.bytes();
      const exitCode = exit.exitCode ?? 128 + signalNumber(exit.signal ?? '');
      // A shell between the backend and the command may report the SIGKILL as status 137.
      const oomKilled = exitCode === 128 + signalNumber('SIGKILL') && (await this.#askOom());
      return {
        exitCode,
        signal: exit.signal,
        oomKilled,
        stdout: decodeUtf8(stdoutBytes),
        stderr: decodeUtf8(stderrBytes),
        stdoutBytes,
        stderrBytes,
        truncated: { stdout: this.#out.truncated, stderr: this.#err.truncated },
        totalBytes: { stdout: this.#out.totalBytes, stderr: this.#err.totalBytes },
        durationMs: performance.now() - this.#started,
        command: this.#command,
      };
    } catch (error) {
      // Typed errors from the transport (a missing cwd, a dead session) get this command's context.
      throw toAgentboxError(error, this.#context);
    } finally {
      this.#exited = true;
      this.#cleanup();
    }
  }

  /** The backend's answer, bounded: a check that fails or hangs is a no. */
  async #askOom(): Promise<boolean> {
    const ask = this.options.oomKilled;
    if (!ask) return false;
    return Promise.race([ask().catch(() => false), delay(OOM_CHECK_MS).then(() => false)]);
  }

  #feedStdin(): void {
    const { stdin, closeStdinAfterInput } = this.options;
    if (stdin === undefined && !closeStdinAfterInput) return;
    const feed = async () => {
      if (stdin !== undefined) {
        for await (const chunk of stdinChunks(stdin)) {
          if (this.#stopReason) return;
          await this.writeStdin(chunk);
        }
      }
      if (closeStdinAfterInput || stdin !== undefined) await this.closeStdin();
    };
    // A command that exits without reading its input makes writes fail (EPIPE): that is not an error of the exec.
    feed().catch(() => {});
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}

/** All a process wrote and how it ended. */
export interface CollectedProcess {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number | null;
  signal: string | null;
}

/**
 * Read both streams of a process from now on (so its pipes never fill while the caller feeds
 * its stdin) and settle with them and its exit: for a backend's short internal commands.
 */
export async function collectProcess(proc: RawProcess): Promise<CollectedProcess> {
  const read = async (stream: AsyncIterable<Uint8Array>) => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    return Buffer.concat(chunks);
  };
  const [stdout, stderr, exit] = await Promise.all([read(proc.stdout), read(proc.stderr), proc.exit]);
  return { stdout, stderr, ...exit };
}
