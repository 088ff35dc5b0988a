/**
 * Commands on Modal. The SDK's exec streams stdin in and stdout and stderr out as separate byte
 * streams, but its own timeout and termination reach one process, not a tree. So each command
 * runs under a small fixed wrapper, every user value one quoted argument:
 *
 * - the command leads its own process group (`setsid`), its pid written to its directory
 *   (`/tmp/.agentbox-exec/<id>`), so a kill or a timeout signals its whole tree from a second
 *   exec (core's OUTPUT_DIR_KILL_SCRIPT), and the sandbox and its other commands live on;
 * - its stdout and stderr are named pipes in that directory, copied byte for byte by `cat` to
 *   the exec's own: the kill also finds a process that left the group but still holds them;
 * - stdin is the exec's, passed on explicitly (a background job would otherwise read /dev/null);
 * - an argv longer than the SDK takes in one exec is written to a file first, as one line of
 *   shell-quoted words that the wrapper sources (and removes).
 *
 * A directory is removed by a later command's wrapper.
 */
import { randomBytes } from 'node:crypto';
import { SandboxUnavailableError } from '@agentbox/core';
import {
  apiCommand,
  apiCommandFailure,
  type ErrorContext,
  OUTPUT_DIR_KILL_SCRIPT,
  type RawProcess,
  type StartRequest,
  StreamQueue,
  shellQuoteAll,
  signalName,
} from '@agentbox/core/backend';
import type { ContainerProcess, Sandbox } from 'modal';
import { modalFailure } from './client.js';

const EXEC_ROOT = '/tmp/.agentbox-exec';
/** The line the wrapper writes to stderr when it cannot make its directory (then exits 125). */
const SETUP_FAILED = 'agentbox-exec-setup-failed';
/** Stdin bytes sent in one write at most (one RPC each). */
const STDIN_BATCH = 2 * 1024 * 1024;
/** The stderr head kept to read a working-directory failure from. */
const STDERR_HEAD = 4096;

/**
 * The SDK refuses an exec whose arguments total 64 KiB or more (before any call). Past this
 * share of it, the command's argv goes in a file the wrapper reads (the wrapper's own text and
 * arguments take the rest).
 */
const ARGV_INLINE_BYTES = 48 * 1024;

// $1 the command's directory, $2 a file that sets the argv (or empty: the argv follows), $3 how
// many stale directories follow, then those, then the argv.
const WRAPPER = [
  'd=$1; f=$2; n=$3; shift 3',
  'while [ "$n" -gt 0 ]; do rm -rf -- "$1"; shift; n=$((n-1)); done',
  // The wrapper's own messages (a shell's "Killed" for its job) never join the command's stderr.
  'exec 3>&2 2>/dev/null',
  // A long argv: the file is one `set --` line of quoted words (shellQuoteAll).
  `if [ -n "$f" ]; then . "$f" && rm -f -- "$f" || { echo ${SETUP_FAILED} >&3; exit 125; }; fi`,
  `m=$(umask); umask 077; mkdir -p -- "$d" && mkfifo "$d/out" "$d/err" || { echo ${SETUP_FAILED} >&3; exit 125; }; umask "$m"`,
  'cat "$d/out" </dev/null 3>&- & a=$!',
  'cat "$d/err" </dev/null >&3 3>&- & b=$!',
  // Through fd 4: a shell gives a background job /dev/null unless stdin is redirected, and
  // `<&0` is not taken as a redirection by every shell.
  'exec 4<&0',
  'setsid "$@" <&4 >"$d/out" 2>"$d/err" 3>&- 4<&- &',
  'p=$!; echo "$p" >"$d/pid"',
  'exec 0</dev/null 4<&-',
  'wait "$p"; s=$?',
  // The output ends when every process holding it has let go (as a pipe does).
  'wait "$a" "$b"',
  'exit "$s"',
].join('\n');

export interface ExecTransport {
  /** The Modal sandbox behind the handle now (it changes at rollback). */
  sandbox: Sandbox;
  /** Directories of finished commands, removed by the next wrapper. */
  stale: string[];
  context: ErrorContext;
}

type Exit = { exitCode: number | null; signal: string | null };

/** Start a command on the sandbox behind the transport; resolves once Modal has it running. */
export async function startModalProcess(transport: ExecTransport, req: StartRequest): Promise<RawProcess> {
  const argv = apiCommand(req, transport.context);
  const dir = `${EXEC_ROOT}/${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`;
  // The instance this command runs on, fixed at start (a rollback swaps the transport's).
  const sandbox = transport.sandbox;
  const stale = transport.stale.splice(0, 64);
  const argvBytes = argv.reduce((n, arg) => n + Buffer.byteLength(arg), 0);
  const argvFile =
    argvBytes > ARGV_INLINE_BYTES ? `/tmp/.agentbox-argv-${dir.slice(EXEC_ROOT.length + 1)}` : '';
  let proc: ContainerProcess<Uint8Array>;
  try {
    if (argvFile)
      await sandbox.filesystem.writeBytes(Buffer.from(`set -- ${shellQuoteAll(argv)}\n`), argvFile);
    proc = await sandbox.exec(
      [
        '/bin/sh',
        '-c',
        WRAPPER,
        'agentbox-exec',
        dir,
        argvFile,
        String(stale.length),
        ...stale,
        ...(argvFile ? [] : argv),
      ],
      {
        mode: 'binary',
      },
    );
  } catch (error) {
    transport.stale.push(...stale);
    throw modalFailure(error, transport.context);
  }
  const stdout = new StreamQueue();
  const stderr = new StreamQueue();
  const errHead: Uint8Array[] = [];
  let errHeadBytes = 0;
  const pump = async (source: ReadableStream<Uint8Array>, queue: StreamQueue, keepHead: boolean) => {
    const reader = source.getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.length === 0) continue;
      if (keepHead && errHeadBytes < STDERR_HEAD) {
        errHead.push(value);
        errHeadBytes += value.length;
      }
      await queue.push(value);
    }
  };
  const writer = proc.stdin.getWriter();
  let stdinClosed = false;
  // Every stdin write is one RPC: small chunks are gathered (up to STDIN_BATCH) and sent
  // together, one write in flight at a time; a caller waits only while a full batch is pending.
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let flushing: Promise<void> | undefined;
  let stdinFailure: unknown;
  const flush = (): Promise<void> => {
    flushing ??= (async () => {
      try {
        while (pending.length > 0) {
          const batch = Buffer.concat(pending);
          pending = [];
          pendingBytes = 0;
          // One RPC carries at most STDIN_BATCH (gRPC servers cap a message, 4 MiB by default).
          for (let at = 0; at < batch.length; at += STDIN_BATCH)
            await writer.write(batch.subarray(at, at + STDIN_BATCH));
        }
      } catch (error) {
        stdinFailure ??= error;
        pending = [];
        pendingBytes = 0;
        throw error;
      } finally {
        flushing = undefined;
      }
    })();
    return flushing;
  };

  const exit: Promise<Exit> = (async () => {
    try {
      const [status] = await Promise.all([
        proc.wait(),
        pump(proc.stdout, stdout, false),
        pump(proc.stderr, stderr, true),
      ]);
      transport.stale.push(dir);
      const failure = apiCommandFailure(status, Buffer.concat(errHead), req.cwd, transport.context);
      if (failure) throw failure;
      if (status === 125)
        throw new SandboxUnavailableError(
          'the command wrapper could not set up its directory',
          transport.context,
        );
      const signal = status > 128 && status < 160 ? signalName(status - 128) : null;
      return signal ? { exitCode: null, signal } : { exitCode: status, signal: null };
    } catch (error) {
      throw modalFailure(error, { ...transport.context, operation: 'exec' });
    } finally {
      stdout.end();
      stderr.end();
    }
  })();
  exit.catch(() => {});

  return {
    stdout,
    stderr,
    async writeStdin(chunk) {
      if (stdinClosed || stdinFailure !== undefined)
        throw Object.assign(new Error('stdin is closed'), { code: 'EPIPE', cause: stdinFailure });
      pending.push(Uint8Array.from(chunk));
      pendingBytes += chunk.length;
      const sending = flush();
      // A failure reaches the next write (or this one, when it waits).
      sending.catch(() => {});
      if (pendingBytes >= STDIN_BATCH) await sending;
    },
    async closeStdin() {
      if (stdinClosed) return;
      stdinClosed = true;
      await flush().catch(() => {});
      // A batch may have come in while the last one was in flight.
      if (pending.length > 0) await flush().catch(() => {});
      await writer.close().catch(() => {});
    },
    async kill(signal) {
      try {
        const killer = await sandbox.exec(
          ['/bin/sh', '-c', OUTPUT_DIR_KILL_SCRIPT, 'agentbox-kill', dir, signal.replace(/^SIG/, '')],
          { mode: 'binary', stdout: 'ignore', stderr: 'ignore' },
        );
        await killer.wait();
      } catch (error) {
        throw new SandboxUnavailableError(`could not signal the command: ${(error as Error).message}`, {
          ...transport.context,
          operation: 'kill',
          cause: error,
        });
      }
    },
    exit,
  };
}
