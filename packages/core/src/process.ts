/**
 * The exec semantics written once: a backend only starts a {@link RawProcess}; this module
 * feeds stdin, drains and caps output, enforces timeouts and aborts by killing the whole
 * process tree, and turns the outcome into an ExecResult or a typed error.
 */
import { constants } from 'node:os';
import {
  AbortedError,
  type ErrorContext,
  InvalidArgumentError,
  SandboxClosedError,
  TimeoutError,
  toAgentboxError,
} from './errors.js';
import { DEFAULT_MAX_OUTPUT_BYTES, decodeUtf8, encodeUtf8, OutputBuffer } from './output.js';
import { StreamQueue } from './stream-queue.js';
import type { Command, ExecHandle, ExecResult, SpawnOptions, StdinSource } from './types.js';

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
  /** Signal the command's whole process tree (its process group or session), not just its leader. */
  kill(signal: NodeJS.Signals): Promise<void>;
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
    if (!ENV_NAME.test(name))
      throw new InvalidArgumentError(`invalid environment variable name "${name}"`, context);
    if (typeof value !== 'string' || value.includes('\0'))
      throw new InvalidArgumentError(
        `environment variable ${name} must be a string without NUL bytes`,
        context,
      );
    env[name] = value;
  }
  return env;
}

/** A string runs through `sh -c`; an array runs as argv with no shell. */
export function normalizeCommand(cmd: Command, context: ErrorContext): readonly string[] {
  if (typeof cmd === 'string') {
    if (cmd.includes('\0')) throw new InvalidArgumentError('command contains a NUL byte', context);
    return ['sh', '-c', cmd];
  }
  if (!Array.isArray(cmd) || cmd.length === 0 || cmd[0] === '')
    throw new InvalidArgumentError('command must be a non-empty string or a non-empty argv array', context);
  for (const arg of cmd) {
    if (typeof arg !== 'string')
      throw new InvalidArgumentError('every argv element must be a string', context);
    if (arg.includes('\0')) throw new InvalidArgumentError('an argv element contains a NUL byte', context);
  }
  return [...cmd];
}

export function signalNumber(name: string): number {
  return (constants.signals as Record<string, number>)[name] ?? 0;
}

export function signalName(num: number): string | null {
  for (const [name, n] of Object.entries(constants.signals)) if (n === num) return name;
  return null;
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
}

/** How long to wait for output pipes to close after a killed command has exited. */
const DRAIN_AFTER_KILL_MS = 2_000;

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
  #stopReason: 'timeout' | 'abort' | 'closed' | undefined;
  #stopNow: (() => void) | undefined;
  #stdinClosed = false;
  #stdinChain: Promise<void> = Promise.resolve();

  constructor(
    command: readonly string[],
    start: () => Promise<RawProcess>,
    private readonly options: RunOptions,
    context: ErrorContext,
  ) {
    this.#command = command;
    this.#context = { ...context, subject: command.join(' ').slice(0, 200) };
    const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    if (!Number.isInteger(max) || max < 0)
      throw new InvalidArgumentError('maxOutputBytes must be a non-negative integer', context);
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs <= 0))
      throw new InvalidArgumentError('timeoutMs must be a positive number', context);
    this.#out = new OutputBuffer(max);
    this.#err = new OutputBuffer(max);
    if (!options.streaming) this.#stopUnreadStreams();
    this.#raw = options.signal?.aborted
      ? Promise.reject(new AbortedError('aborted before the command started', this.#context))
      : start();
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
    const bytes = typeof data === 'string' ? encodeUtf8(data) : data;
    const next = this.#stdinChain.then(async () => {
      if (this.#stdinClosed) throw new InvalidArgumentError('stdin is already closed', this.#context);
      if (bytes.length > 0) await (await this.#raw).writeStdin(bytes);
    });
    this.#stdinChain = next.catch(() => {});
    return next;
  }

  closeStdin(): Promise<void> {
    const next = this.#stdinChain.then(async () => {
      if (this.#stdinClosed) return;
      this.#stdinClosed = true;
      await (await this.#raw).closeStdin();
    });
    this.#stdinChain = next.catch(() => {});
    return next;
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await (await this.#raw).kill(signal);
  }

  /** The sandbox is closing: kill the command's tree; the result is a SandboxClosedError. */
  stopForClose(): void {
    if (this.#stopReason) return;
    this.#stopReason = 'closed';
    this.#stopNow?.();
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

  async #run(): Promise<ExecResult> {
    const raw = await this.#raw;
    const { timeoutMs, signal } = this.options;
    const stop = (reason: 'timeout' | 'abort') => {
      if (this.#stopReason) return;
      this.#stopReason = reason;
      raw.kill('SIGKILL').catch(() => {});
    };
    this.#stopNow = () => raw.kill('SIGKILL').catch(() => {});
    if (this.#stopReason === 'closed') this.#stopNow();
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => stop('timeout'), timeoutMs);
    const onAbort = () => stop('abort');
    signal?.addEventListener('abort', onAbort, { once: true });

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
      const exit = await raw.exit.catch((error: unknown) => {
        if (this.#stopReason === 'closed') return { exitCode: null, signal: 'SIGKILL' };
        throw error;
      });
      if (this.#stopReason === 'closed')
        throw new SandboxClosedError('the sandbox was closed while the command ran', this.#context);
      if (this.#stopReason) {
        // Killed by us: do not let a pipe held open by an unreachable descendant hang the caller.
        await Promise.race([drained.catch(() => {}), delay(DRAIN_AFTER_KILL_MS)]);
        const partial = this.#partial();
        if (this.#stopReason === 'timeout') {
          throw new TimeoutError(
            `command timed out after ${timeoutMs} ms`,
            timeoutMs!,
            partial,
            this.#context,
          );
        }
        throw new AbortedError('command aborted', { ...this.#context, cause: signal?.reason });
      }
      await drained;
      const stdoutBytes = this.#out.bytes();
      const stderrBytes = this.#err.bytes();
      const exitCode = exit.exitCode ?? 128 + signalNumber(exit.signal ?? '');
      return {
        exitCode,
        signal: exit.signal,
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
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
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
