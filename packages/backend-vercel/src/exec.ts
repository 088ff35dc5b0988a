/**
 * Commands on Vercel. `runCommand` streams a command's output live (NDJSON), but as text: bytes
 * that are not UTF-8 come back replaced. It takes no stdin, and its kill reaches one process. So
 * each command runs detached under a small fixed wrapper, every user value one quoted argument:
 *
 * - stdin: the bytes given are uploaded as a file first (through the SDK's file API, byte-exact)
 *   and redirected; without input the command reads /dev/null. Input is therefore taken whole
 *   before the command starts: streaming stdin into a running command (spawn) is not offered.
 * - the command runs as the leader of its own process group (`setsid`), its pid written next to
 *   its output, so a kill or timeout signals its whole tree (core's OUTPUT_DIR_KILL_SCRIPT, run as
 *   a second command).
 * - its stdout and stderr are named pipes read by `tee`, which copies them byte-exact to files
 *   and (the first LIVE_BYTES of each) on to the wrapper's own output, streamed live. Live text
 *   is delivered as long as it is whole (no replacement character); from the first lossy chunk
 *   on, or past LIVE_BYTES, that stream is delivered from its file, read through the SDK's file
 *   API once the command has ended.
 *
 * The wrapper's directory (`/tmp/.agentbox-exec/<id>`) is removed by the next command's wrapper.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { type AgentboxError, SandboxUnavailableError } from '@agentbox/core';
import {
  apiCommand,
  apiCommandFailure,
  type ErrorContext,
  OUTPUT_DIR_KILL_SCRIPT,
  type RawProcess,
  type StartRequest,
  StreamQueue,
  signalName,
} from '@agentbox/core/backend';
import type { Sandbox } from '@vercel/sandbox';
import { vercelFailure } from './client.js';

const EXEC_ROOT = '/tmp/.agentbox-exec';
const REPLACEMENT = '\uFFFD';
/**
 * Each stream is streamed live up to this many bytes; beyond, it comes from its file when the
 * command ends (output moved as JSON text costs up to six times its size, and the SDK reads
 * its log stream without backpressure).
 */
const LIVE_BYTES = 1024 * 1024;
// `head -c` buffers; dd passes each read on as it comes, and stops after LIVE_BYTES.
const LIVE_COPY = `dd bs=65536 count=${LIVE_BYTES} iflag=count_bytes 2>/dev/null`;

// $1 the command's directory, $2 its stdin file, $3 how many stale directories follow, then
// those, then the command's argv.
const WRAPPER = [
  'd=$1; i=$2; n=$3; shift 3',
  'while [ "$n" -gt 0 ]; do rm -rf -- "$1"; shift; n=$((n-1)); done',
  // The wrapper's own messages (a shell's "Killed" for its job) never join the command's stderr.
  'exec 3>&2 2>/dev/null',
  'umask 077; mkdir -p -- "$d" && mkfifo "$d/out" "$d/err" || exit 125; umask 022',
  // Live copies stop after LIVE_BYTES (the rest is drained); the files get everything.
  `tee "$d/out.bytes" <"$d/out" 3>&- | { ${LIVE_COPY}; cat >/dev/null; } & a=$!`,
  `tee "$d/err.bytes" <"$d/err" 3>&- | { ${LIVE_COPY}; cat >/dev/null; } >&3 3>&- & b=$!`,
  'setsid "$@" <"$i" >"$d/out" 2>"$d/err" 3>&- &',
  'p=$!; echo "$p" >"$d/pid"',
  'wait "$p"; s=$?',
  // The output ends when every process holding it has let go (as a pipe does).
  'wait "$a" "$b"',
  'exit "$s"',
].join('\n');

export interface ExecTransport {
  /** The Vercel sandbox behind the handle now (it changes at rollback). */
  sandbox: Sandbox;
  /** Directories of finished commands, removed by the next wrapper. */
  stale: string[];
  context: ErrorContext;
}

type LiveStream = { queue: StreamQueue; delivered: number; lossy: boolean; head: Uint8Array[] };

/** Start a command; it actually runs once its stdin is closed (all input is known). */
export function startVercelProcess(transport: ExecTransport, req: StartRequest): RawProcess {
  const argv = apiCommand(req, transport.context);
  const dir = `${EXEC_ROOT}/${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`;
  const out: LiveStream = { queue: new StreamQueue(), delivered: 0, lossy: false, head: [] };
  const err: LiveStream = { queue: new StreamQueue(), delivered: 0, lossy: false, head: [] };
  const input: Uint8Array[] = [];
  let inputClosed = false;
  let started = false;
  let killedBefore: string | undefined;
  let settle!: (value: { exitCode: number | null; signal: string | null }) => void;
  let fail!: (error: Error) => void;
  const exit = new Promise<{ exitCode: number | null; signal: string | null }>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  exit.catch(() => {});
  // The instance this command runs on, fixed at start (a rollback swaps the transport's).
  const sandbox = transport.sandbox;

  const finish = (
    error: AgentboxError | undefined,
    status?: { exitCode: number | null; signal: string | null },
  ) => {
    out.queue.end();
    err.queue.end();
    if (error) fail(error);
    else settle(status!);
  };

  const deliver = async (stream: LiveStream, text: string) => {
    if (stream.lossy) return;
    if (text.includes(REPLACEMENT)) {
      // From here on this stream comes from its file, exact.
      stream.lossy = true;
      return;
    }
    const bytes = Buffer.from(text, 'utf8');
    stream.delivered += bytes.length;
    if (stream === err && err.head.length < 4) err.head.push(bytes);
    await stream.queue.push(bytes);
  };

  const run = async () => {
    if (killedBefore) {
      finish(undefined, { exitCode: null, signal: killedBefore });
      return;
    }
    let stdinPath = '/dev/null';
    if (input.length > 0) {
      stdinPath = `${dir}/in`;
      await sandbox.writeFiles([{ path: stdinPath, content: Buffer.concat(input), mode: 0o600 }]);
      input.length = 0;
    }
    // A kill (a timeout, an abort) that came while the input was uploading: never start.
    if (killedBefore) {
      transport.stale.push(dir);
      finish(undefined, { exitCode: null, signal: killedBefore });
      return;
    }
    started = true;
    const stale = transport.stale.splice(0, 64);
    const command = await sandbox.runCommand({
      cmd: 'sh',
      args: ['-c', WRAPPER, 'agentbox-exec', dir, stdinPath, String(stale.length), ...stale, ...argv],
      cwd: '/',
      detached: true,
    });
    for await (const line of command.logs()) {
      if (line.stream === 'stdout') await deliver(out, line.data);
      else if (line.stream === 'stderr') await deliver(err, line.data);
    }
    const done = await command.wait();
    // A stream that was lossy, or may have been cut at LIVE_BYTES, continues from its file.
    if (out.lossy || out.delivered >= LIVE_BYTES) await pump(sandbox, `${dir}/out.bytes`, out);
    if (err.lossy || err.delivered >= LIVE_BYTES) await pump(sandbox, `${dir}/err.bytes`, err);
    transport.stale.push(dir);
    const status = done.exitCode;
    const cwdFailure = apiCommandFailure(status, Buffer.concat(err.head), req.cwd, transport.context);
    if (cwdFailure) {
      finish(cwdFailure);
      return;
    }
    const signal = status > 128 && status < 160 ? signalName(status - 128) : null;
    finish(undefined, signal ? { exitCode: null, signal } : { exitCode: status, signal: null });
  };

  const begin = () => {
    run().catch((error: unknown) => {
      transport.stale.push(dir);
      finish(vercelFailure(error, { ...transport.context, operation: 'exec' }));
    });
  };

  return {
    stdout: out.queue,
    stderr: err.queue,
    async writeStdin(chunk) {
      if (inputClosed) throw Object.assign(new Error('stdin is closed'), { code: 'EPIPE' });
      input.push(Uint8Array.from(chunk));
    },
    async closeStdin() {
      if (inputClosed) return;
      inputClosed = true;
      begin();
    },
    async kill(signal) {
      if (!started) {
        // Not started yet (input still uploading, or not all given): it never will be.
        killedBefore ??= signal;
        if (!inputClosed) {
          inputClosed = true;
          begin();
        }
        return;
      }
      try {
        await sandbox.runCommand('sh', [
          '-c',
          OUTPUT_DIR_KILL_SCRIPT,
          'agentbox-kill',
          dir,
          signal.replace(/^SIG/, ''),
        ]);
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

/** Read a file into the queue, skipping what was already delivered live. */
async function pump(sandbox: Sandbox, path: string, stream: LiveStream): Promise<void> {
  // Typed as a web-style stream; the SDK hands over a Node.js Readable.
  const body = (await sandbox.readFile({ path })) as unknown as Readable | null;
  if (body === null)
    throw new SandboxUnavailableError(`the command's output file ${path} is gone`, { operation: 'exec' });
  let skip = stream.delivered;
  for await (const chunk of body) {
    let bytes = chunk as Buffer;
    if (skip > 0) {
      const dropped = Math.min(skip, bytes.length);
      skip -= dropped;
      bytes = bytes.subarray(dropped);
    }
    if (bytes.length > 0) await stream.queue.push(bytes);
  }
}
