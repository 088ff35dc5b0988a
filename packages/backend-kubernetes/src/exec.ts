/**
 * Commands over pods/exec (client-node's Exec: a WebSocket offering v5.channel.k8s.io down to
 * v2). stdout and stderr arrive on their own channels; stdin ends with the v5 close frame
 * (under v4 only by closing the socket); the exit status is the V1Status on channel 3.
 * Closing the socket does not kill the remote command, so each command starts under a small
 * wrapper that enters `cwd`, reports its pid on the first line of stderr and execs `setsid`:
 * a kill is a second exec that signals the whole process group (core's HOLDER_KILL_SCRIPT).
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { AbortedError, SandboxUnavailableError } from '@agentbox/core';
import {
  type ErrorContext,
  fromErrno,
  HOLDER_KILL_SCRIPT,
  holderPipeSet,
  type RawProcess,
  type RunnerPrograms,
  type StartRequest,
  StreamQueue,
  signalName,
} from '@agentbox/core/backend';
import type { V1Status } from '@kubernetes/client-node';
import { type Cluster, kubeFailure } from './client.js';

/** Where commands go: the pod and one of its containers. */
export interface ExecTarget {
  cluster: Cluster;
  pod: string;
  container: string;
  context: ErrorContext;
}

/** The exit code a V1Status stands for; undefined when it is no exit (the exec itself failed). */
export function exitCodeOf(status: V1Status): number | undefined {
  if (status.status === 'Success') return 0;
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
    const code = Number(cause?.message);
    if (Number.isInteger(code)) return code;
  }
  return undefined;
}

/** Stop sending stdin while the socket has this much unsent. */
const STDIN_HIGH_WATER = 1024 * 1024;

/** One exec: output queues, stdin, and the exit from the status channel. */
export class ExecStream {
  readonly stdout = new StreamQueue();
  readonly stderr = new StreamQueue();
  readonly exit: Promise<number>;
  readonly #input = new PassThrough();
  // biome-ignore lint/suspicious/noExplicitAny: client-node's socket (isomorphic-ws)
  #socket: any;
  #stdinClosed = false;

  private constructor(exit: Promise<number>) {
    this.exit = exit;
  }

  static async open(target: ExecTarget, argv: readonly string[]): Promise<ExecStream> {
    let settle!: (code: number) => void;
    let fail!: (error: Error) => void;
    const exit = new Promise<number>((resolve, reject) => {
      settle = resolve;
      fail = reject;
    });
    exit.catch(() => {});
    const stream = new ExecStream(exit);
    const sink = (queue: StreamQueue) => {
      const w = new Writable({
        write(chunk: Buffer, _enc, done) {
          const waited = queue.push(new Uint8Array(chunk));
          if (waited) waited.then(() => done(), done);
          else done();
        },
      });
      return w;
    };
    const out = sink(stream.stdout);
    const err = sink(stream.stderr);
    const flushed = (w: Writable) =>
      new Promise<void>((resolve) => (w.writableFinished ? resolve() : w.once('finish', resolve)));
    let status: V1Status | undefined;
    try {
      stream.#socket = await target.cluster.exec.exec(
        target.cluster.namespace,
        target.pod,
        target.container,
        [...argv],
        out,
        err,
        stream.#input,
        false,
        (s) => {
          status = s;
        },
      );
    } catch (error) {
      throw kubeFailure(error, { ...target.context, operation: 'exec' });
    }
    stream.#socket.on('close', async () => {
      if (!status) {
        out.end();
        err.end();
      }
      await Promise.all([flushed(out), flushed(err)]);
      stream.stdout.end();
      stream.stderr.end();
      const code = status ? exitCodeOf(status) : undefined;
      if (code !== undefined) settle(code);
      else
        fail(
          new SandboxUnavailableError(
            status
              ? `the exec failed: ${status.reason ?? ''} ${status.message ?? ''}`.trim()
              : 'the exec socket closed before the command reported its exit',
            target.context,
          ),
        );
    });
    return stream;
  }

  /** Whether the socket speaks v5 (stdin can end while output continues). */
  get halfClose(): boolean {
    return this.#socket?.protocol === 'v5.channel.k8s.io';
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#stdinClosed || this.#socket.readyState !== 1)
      throw Object.assign(new Error('stdin is closed'), { code: 'EPIPE' });
    this.#input.write(Buffer.from(chunk));
    while (this.#socket.bufferedAmount > STDIN_HIGH_WATER && this.#socket.readyState === 1)
      await new Promise((r) => setTimeout(r, 5));
  }

  async closeStdin(): Promise<void> {
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    this.#input.end();
  }

  /** Drop the connection (the command goes on running). */
  destroy(): void {
    this.#socket?.close();
  }
}

/** Run an internal command to the end and collect its output. */
export async function runExec(
  target: ExecTarget,
  argv: readonly string[],
  opts: { stdin?: Uint8Array | AsyncIterable<Uint8Array>; signal?: AbortSignal | undefined } = {},
): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer }> {
  if (opts.signal?.aborted) throw new AbortedError('aborted', target.context);
  const stream = await ExecStream.open(target, argv);
  const onAbort = () => stream.destroy();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const collect = async (q: StreamQueue) => {
      const chunks: Uint8Array[] = [];
      for await (const c of q) chunks.push(c);
      return Buffer.concat(chunks);
    };
    const outputs = Promise.all([collect(stream.stdout), collect(stream.stderr)]);
    if (opts.stdin !== undefined) {
      const source = opts.stdin instanceof Uint8Array ? [opts.stdin] : opts.stdin;
      for await (const chunk of source) await stream.write(chunk);
    }
    await stream.closeStdin();
    const [stdout, stderr] = await outputs;
    const exitCode = await stream.exit;
    return { exitCode, stdout, stderr };
  } catch (error) {
    if (opts.signal?.aborted) throw new AbortedError('aborted', target.context);
    throw error;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * $1 marker nonce, $2 cwd, $3 setsid, then argv. The subshell is forked, so it is no group
 * leader and `setsid` makes it one without forking: the pid it reports is the command's pid and
 * pgid. `--` ends setsid's options: an argv[0] starting with `-` is a command name.
 */
const WRAPPER = [
  'n=$1 d=$2 s=$3; shift 3',
  'exec 3>&2 2>/dev/null',
  'if ! cd -P -- "$d"; then',
  '  if [ ! -e "$d" ]; then k=ENOENT; elif [ ! -d "$d" ]; then k=ENOTDIR; else k=EACCES; fi',
  `  printf '%sC %s\\n' "$n" "$k" >&3`,
  '  exit 0',
  'fi',
  // The wrapper's pid and the device:inode of its stdout and stderr pipes, for the holder kill.
  'exec 5>&1; w=$$ i=$(stat -L -c %d:%i /proc/self/fd/5 /proc/self/fd/3); exec 5>&-',
  '(',
  '  read -r p x </proc/self/stat',
  `  printf '%sS %s %s %s\\n' "$n" "$p" "$w" "$(echo $i)" >&3`,
  '  exec "$s" -- "$@" 2>&3 3>&-',
  ')',
  // Not the last command: the subshell is forked (a last one may replace the wrapper, a group
  // leader, and setsid would then fork and leave).
  'r=$?',
  'exit $r',
].join('\n');

export function newNonce(): string {
  return `\x1eagentbox-${randomBytes(12).toString('hex')}`;
}

/**
 * Signal a command's process group, and every process still holding one of the given pipe sets
 * (core's HOLDER_KILL_SCRIPT: a process that left the group but keeps the output), with one exec.
 */
export async function killGroup(
  target: ExecTarget,
  signal: string,
  pgid: number,
  pipes: readonly string[] = [],
): Promise<void> {
  await runExec(target, [
    '/bin/sh',
    '-c',
    HOLDER_KILL_SCRIPT,
    'agentbox-kill',
    signal.replace(/^SIG/, ''),
    String(pgid),
    '',
    ...pipes,
  ]);
}

/**
 * Start a user command under the wrapper; resolves once it runs (its pid known). With the
 * hidden copies (`programs`), the wrapper runs from them and the command is exec'd through the
 * image's readable `env`: BusyBox may run an applet by re-executing itself, and a command exec'd
 * from the execute-only copy would stay undumpable, out of reach of the kill that looks for its
 * processes in /proc.
 */
export async function startWrapped(
  target: ExecTarget,
  nonce: string,
  req: StartRequest,
  signal: AbortSignal | undefined,
  programs?: RunnerPrograms,
): Promise<WrappedProcess> {
  if (signal?.aborted) throw new AbortedError('aborted before the command started', target.context);
  const env = Object.entries(req.env).map(([k, v]) => `${k}=${v}`);
  const stream = await ExecStream.open(target, [
    programs?.sh ?? '/bin/sh',
    '-c',
    WRAPPER,
    'agentbox',
    nonce,
    req.cwd,
    programs?.setsid ?? 'setsid',
    ...(programs ? [programs.env, '--', ...env] : env.length > 0 ? ['env', ...env] : []),
    ...req.argv,
  ]);
  const proc = new WrappedProcess(target, nonce, stream, req.cwd);
  const onAbort = () => void proc.kill('SIGKILL').catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await proc.started;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (signal?.aborted) {
    await proc.kill('SIGKILL').catch(() => {});
    throw new AbortedError('aborted while the command was starting', target.context);
  }
  return proc;
}

export class WrappedProcess implements RawProcess {
  readonly stdout: StreamQueue;
  readonly stderr = new StreamQueue();
  readonly exit: Promise<{ exitCode: number | null; signal: string | null }>;
  readonly started: Promise<number>;
  readonly #target: ExecTarget;
  readonly #stream: ExecStream;
  #pid: number | undefined;
  /** The wrapper's pid and the device:inode of the command's stdout and stderr pipes. */
  #pipes: { owner: number; ids: string[] } | undefined;
  #exited = false;

  constructor(target: ExecTarget, nonce: string, stream: ExecStream, cwd: string) {
    this.#target = target;
    this.#stream = stream;
    this.stdout = stream.stdout;
    let resolveStarted!: (pid: number) => void;
    let rejectStarted!: (error: unknown) => void;
    this.started = new Promise((resolve, reject) => {
      resolveStarted = resolve;
      rejectStarted = reject;
    });
    this.started.catch(() => {});
    const marker = Buffer.from(nonce, 'latin1');
    // The first line of stderr is the wrapper's; everything after it is the command's.
    const pump = async () => {
      let head: Buffer | undefined = Buffer.alloc(0);
      for await (const chunk of stream.stderr) {
        if (head === undefined) {
          await this.stderr.push(chunk);
          continue;
        }
        head = Buffer.concat([head, chunk]);
        const nl = head.indexOf(0x0a);
        const prefix = head.subarray(0, Math.min(head.length, marker.length));
        if (!prefix.equals(marker.subarray(0, prefix.length)) || (nl < 0 && head.length > 256)) {
          await this.stderr.push(head);
          head = undefined;
          continue;
        }
        if (nl < 0) continue;
        const [kind, value = '', wrapper = '', ...pipes] = head
          .subarray(marker.length, nl)
          .toString('latin1')
          .split(' ');
        const rest = head.subarray(nl + 1);
        head = undefined;
        if (kind === 'S' && /^\d+$/.test(value)) {
          this.#pid = Number(value);
          if (/^\d+$/.test(wrapper) && pipes.length > 0 && pipes.every((x) => /^\d+:\d+$/.test(x)))
            this.#pipes = { owner: Number(wrapper), ids: pipes };
          resolveStarted(this.#pid);
        } else if (kind === 'C') {
          rejectStarted(
            fromErrno(
              value,
              `working directory ${cwd} ${value === 'EACCES' ? 'is not accessible' : value === 'ENOTDIR' ? 'is not a directory' : 'does not exist'}`,
              { ...target.context, subject: cwd },
            ),
          );
        }
        if (rest.length > 0) await this.stderr.push(rest);
      }
      if (head && head.length > 0) await this.stderr.push(head);
      this.stderr.end();
    };
    const pumped = pump();
    this.exit = Promise.all([stream.exit, pumped]).then(
      ([code]) => {
        this.#exited = true;
        if (this.#pid === undefined)
          rejectStarted(
            new SandboxUnavailableError(`the command wrapper failed to start (exit ${code})`, target.context),
          );
        const name = code > 128 ? signalName(code - 128) : null;
        return { exitCode: name ? null : code, signal: name };
      },
      (error: unknown) => {
        this.#exited = true;
        rejectStarted(error);
        throw error;
      },
    );
    this.exit.catch(() => {});
  }

  writeStdin(chunk: Uint8Array): Promise<void> {
    return this.#stream.write(chunk);
  }

  closeStdin(): Promise<void> {
    return this.#stream.closeStdin();
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (this.#exited) return;
    const pid =
      this.#pid ??
      (await Promise.race([this.started, this.exit.then(() => undefined)]).catch(() => undefined));
    if (pid === undefined || this.#exited) return;
    const pipes = this.#pipes ? [holderPipeSet('!', [this.#pipes.owner], this.#pipes.ids)] : [];
    await killGroup(this.#target, signal, pid, pipes);
  }

  /**
   * This process as a session's shell, for the holder kill: a command whose parent it is has
   * its output on these pipes; the shell and its wrapper are spared.
   */
  get pipeSet(): string | undefined {
    if (this.#pid === undefined || !this.#pipes) return undefined;
    return holderPipeSet(this.#pid, [this.#pid, this.#pipes.owner], this.#pipes.ids);
  }
}
