/**
 * Commands on Daytona. The session exec endpoint keeps stdout and stderr apart but carries them
 * as text (bytes that are not UTF-8 would be replaced), and neither it nor the plain execute
 * endpoint takes raw stdin or kills a command's tree. So each command runs under a small fixed
 * wrapper, every user value one quoted argument:
 *
 * - stdin: the bytes given are uploaded as a file first (through the SDK's file API, byte-exact)
 *   and redirected; without input the command reads /dev/null. Input is therefore taken whole
 *   before the command starts: streaming stdin to a running command (spawn) is not offered.
 * - the command runs as the leader of its own process group (`setsid`), its pid written next
 *   to its output, so a kill or timeout signals its whole tree through a second session.
 * - stdout and stderr go to files in the sandbox. When both are small they come back inline in
 *   the exec's answer, checked against their byte counts (a lossy UTF-8 decoding shows as a
 *   replacement character or a count that differs); otherwise they are downloaded as files.
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
  shellQuoteAll,
  signalName,
} from '@agentbox/core/backend';
import type { Sandbox } from '@daytonaio/sdk';
import { daytonaFailure } from './client.js';

const EXEC_ROOT = '/tmp/.agentbox-exec';
/** Outputs up to this size each come back in the exec's own answer. */
const INLINE_BYTES = 256 * 1024;
const INLINE_HEADER = /^agentbox-inline (\d+) (\d+)\n/;
/** A command still running after this long has its output read while it runs, every POLL_EVERY_MS. */
const POLL_AFTER_MS = 250;
const POLL_EVERY_MS = 200;
/** At most this much of each stream per read while the command runs. */
const POLL_BYTES = 64 * 1024;

// $1 the command's directory, $2 its stdin file, $3 how many stale directories follow, then
// those, then the command's argv.
const WRAPPER = [
  'd=$1; i=$2; n=$3; shift 3',
  'while [ "$n" -gt 0 ]; do rm -rf -- "$1"; shift; n=$((n-1)); done',
  'umask 077; mkdir -p -- "$d" || exit 125; umask 022',
  'setsid "$@" <"$i" >"$d/out" 2>"$d/err" &',
  'p=$!; echo "$p" >"$d/pid"',
  'wait "$p"; s=$?',
  'o=$(wc -c <"$d/out"); e=$(wc -c <"$d/err")',
  `if [ "$o" -le ${INLINE_BYTES} ] && [ "$e" -le ${INLINE_BYTES} ]; then`,
  ' printf "agentbox-inline %s %s\\n" "$o" "$e"; cat "$d/out"; cat "$d/err" >&2',
  'fi',
  'exit "$s"',
].join('\n');

// $1 the command's directory, $2 and $3 the stdout and stderr bytes already read: what follows
// of each, as hex (exact bytes through a text channel), separated by a line `--`.
const POLLER = [
  `od -An -v -tx1 -j "$2" -N ${POLL_BYTES} "$1/out" 2>/dev/null`,
  'echo --',
  `od -An -v -tx1 -j "$3" -N ${POLL_BYTES} "$1/err" 2>/dev/null`,
  'exit 0',
].join('\n');

/** Daytona sessions of one instance: a command takes an idle one (sessions run one command at a time). */
export class DaytonaSessions {
  readonly #idle: string[] = [];
  #count = 0;

  constructor(readonly sandbox: Sandbox) {}

  async run<T>(fn: (sessionId: string) => Promise<T>): Promise<T> {
    let id = this.#idle.pop();
    if (id === undefined) {
      id = `agentbox-${randomBytes(6).toString('hex')}-${this.#count++}`;
      await this.sandbox.process.createSession(id);
    }
    try {
      const result = await fn(id);
      this.#idle.push(id);
      return result;
    } catch (error) {
      // A session whose command failed in transport is not reused.
      this.sandbox.process.deleteSession(id).catch(() => {});
      throw error;
    }
  }
}

export interface ExecTransport {
  sessions: DaytonaSessions;
  /** Directories of finished commands, removed by the next wrapper. */
  stale: string[];
  context: ErrorContext;
}

/** Start a command; it actually runs once its stdin is closed (all input is known). */
export function startDaytonaProcess(transport: ExecTransport, req: StartRequest): RawProcess {
  const argv = apiCommand(req, transport.context);
  const dir = `${EXEC_ROOT}/${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`;
  const stdout = new StreamQueue();
  const stderr = new StreamQueue();
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
  const { sandbox } = transport.sessions;

  const finish = (
    error: AgentboxError | undefined,
    status?: { exitCode: number | null; signal: string | null },
  ) => {
    stdout.end();
    stderr.end();
    if (error) fail(error);
    else settle(status!);
  };

  const run = async () => {
    if (killedBefore) {
      finish(undefined, { exitCode: null, signal: killedBefore });
      return;
    }
    let stdinPath = '/dev/null';
    if (input.length > 0) {
      stdinPath = `${dir}/in`;
      await sandbox.fs.uploadFile(Buffer.concat(input), stdinPath);
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
    const command = shellQuoteAll([
      'sh',
      '-c',
      WRAPPER,
      'agentbox-exec',
      dir,
      stdinPath,
      String(stale.length),
      ...stale,
      ...argv,
    ]);
    const running = transport.sessions.run((sessionId) =>
      sandbox.process.executeSessionCommand(sessionId, { command }),
    );
    // While it runs, what it has written so far is read (exactly, as hex) and delivered.
    const read = { out: 0, err: 0 };
    let ended = false;
    const polling = (async () => {
      await Promise.race([running.catch(() => {}), delay(POLL_AFTER_MS)]);
      while (!ended) {
        // A read that fails (the sandbox closing under it) ends the reading, not the command:
        // the command's own answer says how it ended.
        const answer = await transport.sessions
          .run((sessionId) =>
            sandbox.process.executeSessionCommand(sessionId, {
              command: shellQuoteAll([
                'sh',
                '-c',
                POLLER,
                'agentbox-poll',
                dir,
                String(read.out),
                String(read.err),
              ]),
            }),
          )
          .catch(() => undefined);
        if (answer === undefined || ended) break;
        const [outHex = '', errHex = ''] = (answer.stdout ?? '').split('--\n');
        const out = fromHex(outHex);
        const err = fromHex(errHex);
        read.out += out.length;
        read.err += err.length;
        if (out.length > 0) await stdout.push(out);
        if (err.length > 0) await stderr.push(err);
        // Reading while it runs is for liveness; bulk output comes as a download at the end.
        await Promise.race([running.catch(() => {}), delay(POLL_EVERY_MS)]);
      }
    })();
    let answer: Awaited<typeof running>;
    try {
      answer = await running;
    } finally {
      ended = true;
      await polling.catch(() => {});
    }
    const status = answer.exitCode ?? -1;
    const inline = readInline(answer.stdout ?? '', answer.stderr ?? '');
    if (inline) {
      await stdout.push(inline.out.subarray(read.out));
      await stderr.push(inline.err.subarray(read.err));
    } else {
      await Promise.all([
        pump(sandbox, `${dir}/out`, stdout, read.out),
        pump(sandbox, `${dir}/err`, stderr, read.err),
      ]);
    }
    transport.stale.push(dir);
    const cwdFailure = inline && apiCommandFailure(status, inline.err, req.cwd, transport.context);
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
      finish(daytonaFailure(error, { ...transport.context, operation: 'exec' }));
    });
  };

  return {
    stdout,
    stderr,
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
      await transport.sessions
        .run((sessionId) =>
          sandbox.process.executeSessionCommand(sessionId, {
            command: shellQuoteAll([
              'sh',
              '-c',
              OUTPUT_DIR_KILL_SCRIPT,
              'agentbox-kill',
              dir,
              signal.replace(/^SIG/, ''),
            ]),
          }),
        )
        .catch((error: unknown) => {
          throw new SandboxUnavailableError(`could not signal the command: ${(error as Error).message}`, {
            ...transport.context,
            operation: 'kill',
            cause: error,
          });
        });
    },
    exit,
  };
}

/** The outputs from the exec's answer, when they came back whole and exact. */
function readInline(text: string, errText: string): { out: Uint8Array; err: Uint8Array } | undefined {
  const header = INLINE_HEADER.exec(text);
  if (!header) return undefined;
  const body = text.slice(header[0].length);
  // A replacement character means bytes that were not UTF-8 were decoded away (or the output
  // held one itself): either way the files are the exact source.
  if (body.includes('\uFFFD') || errText.includes('\uFFFD')) return undefined;
  const out = Buffer.from(body, 'utf8');
  const err = Buffer.from(errText, 'utf8');
  if (out.length !== Number(header[1]) || err.length !== Number(header[2])) return undefined;
  return { out, err };
}

/** Download a file into the queue, skipping the first `skip` bytes (already delivered). */
async function pump(sandbox: Sandbox, path: string, queue: StreamQueue, skip: number): Promise<void> {
  const stream: Readable = await sandbox.fs.downloadFileStream(path);
  let left = skip;
  for await (const chunk of stream) {
    let bytes = chunk as Buffer;
    if (left > 0) {
      const dropped = Math.min(left, bytes.length);
      left -= dropped;
      bytes = bytes.subarray(dropped);
    }
    if (bytes.length > 0) await queue.push(bytes);
  }
}

function fromHex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
