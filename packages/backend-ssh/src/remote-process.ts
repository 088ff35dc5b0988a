/**
 * A command on the remote host as a core RawProcess, over one SSH exec channel. The wrapper
 * (shell.ts) reports the command's process group first; `kill` signals that whole group with
 * another (control) exec, because closing a channel does not stop remote processes.
 *
 * This is the plain path. The sandbox puts core's SessionPool in front of it (the fast path);
 * the pool also starts its long-lived shells through here, so they get the same wrapper.
 */
import { randomBytes } from 'node:crypto';
import {
  AbortedError,
  AgentboxError,
  NotFoundError,
  PermissionDeniedError,
  parseSignal,
  SandboxUnavailableError,
} from '@agentbox/core';
import {
  type ErrorContext,
  HOLDER_KILL_SCRIPT,
  holderPipeSet,
  type RawProcess,
  type StartRequest,
  untilDrained,
} from '@agentbox/core/backend';
import type { ClientChannel } from 'ssh2';
import type { ExitStatus, Link, SshConnection } from './connection.js';
import type { JailInfo } from './jail.js';
import {
  killGroupCommand,
  parseWrapperStatus,
  quote,
  quoteAll,
  type WrapperStatus,
  wrapperScript,
} from './shell.js';

/** Scripts longer than this (large argv or env) go through a file instead of the exec request. */
const INLINE_SCRIPT_LIMIT = 64 * 1024;

export interface RemoteProcess extends RawProcess {
  /** The process group the command leads on the remote host. */
  readonly pgid: number;
  /** Without a jail, the pid of sshd's process for the channel; in a jail, the command's pid there. */
  readonly peer: number;
  /** The command's stdout and stderr pipes as `device:inode` (empty if the host could not say). */
  readonly pipes: readonly string[];
  /** Settles once the channel has closed: the command exited and its output ended, or the connection dropped. */
  readonly closed: Promise<void>;
}

export interface StartOptions {
  /** Private remote directory for scripts too large to send inline. */
  scratchDir: string;
  /** Upload a script file (used only for large commands). */
  upload: (path: string, data: Uint8Array, signal: AbortSignal | undefined) => Promise<void>;
  context: ErrorContext;
  /** The sandbox's bubblewrap jail on the host, when it has one: the command runs in it. */
  jail?: JailInfo | undefined;
}

export async function startRemoteProcess(
  conn: SshConnection,
  req: StartRequest,
  signal: AbortSignal | undefined,
  opts: StartOptions,
): Promise<RemoteProcess> {
  const marker = `agentbox-${randomBytes(9).toString('hex')}`;
  const script = wrapperScript(req, marker, opts.jail);
  let command = script;
  if (Buffer.byteLength(script) > INLINE_SCRIPT_LIMIT) {
    // sshd and execve cap one exec request; a file has no such limit. The script removes itself.
    const file = `${opts.scratchDir}/cmd-${marker}.sh`;
    await opts.upload(file, Buffer.from(`rm -f -- "$0"\n${script}\n`), signal);
    command = `exec /bin/sh ${quote(file)}`;
  }
  const { channel, link, exit: exited, closed } = await conn.exec(command, { signal, context: opts.context });

  const markerBytes = Buffer.from(marker);
  const exit = watchExit(exited, conn, link, opts.context);
  exit.catch(() => {});
  let status: WrapperStatus;
  let stderr: AsyncIterable<Uint8Array>;
  try {
    const started = await readStatus(channel, markerBytes, signal, opts.context);
    status = started.status;
    stderr = started.rest;
  } catch (error) {
    channel.close();
    throw conn.failure(link, error, 'starting a command', opts.context);
  }
  if (status.kind === 'jail-gone') {
    channel.close();
    throw new SandboxUnavailableError(
      "the sandbox's jail on the host is gone (killed, or the host rebooted)",
      opts.context,
    );
  }
  if (status.kind !== 'started') {
    channel.close();
    const message = {
      'cwd-missing': `working directory ${req.cwd} does not exist`,
      'cwd-not-a-directory': `working directory ${req.cwd} is not a directory`,
      'cwd-denied': `working directory ${req.cwd} is not accessible`,
    }[status.kind];
    if (status.kind === 'cwd-denied')
      throw new PermissionDeniedError(message, { ...opts.context, subject: req.cwd });
    throw new NotFoundError(message, { ...opts.context, subject: req.cwd });
  }
  const { pgid, peer, pipes } = status;
  const stdout = afterMarker(channel, Buffer.from(`${marker}\n`));
  let done = false;
  closed.then(() => {
    done = true;
  });

  return {
    pgid,
    peer,
    pipes,
    closed,
    stdout,
    stderr,
    exit,
    async writeStdin(chunk) {
      if (done || channel.writableEnded || channel.destroyed) throw new Error('stdin is closed (EPIPE)');
      if (!channel.write(chunk)) await untilDrained(channel);
    },
    async closeStdin() {
      if (!done && !channel.writableEnded) channel.end();
    },
    async kill(sig) {
      // The name goes into remote shell text: only a name from the Linux table gets there.
      const name = parseSignal(sig, { ...opts.context, operation: 'kill' });
      if (done) return;
      try {
        await conn.run(killCommand(pgid, peer, pipes, name, opts.jail), {
          control: true,
          context: opts.context,
        });
      } catch (error) {
        throw conn.failure(link, error, 'signalling a command', opts.context);
      }
    },
  };
}

/**
 * The kill of a plain-path command: its group, and whoever still holds its output (core's holder
 * kill, run on the host). Without a jail, sshd's process for the channel holds those pipes too
 * and is spared; in a jail, only the jail's processes are candidates.
 */
function killCommand(
  pgid: number,
  peer: number,
  pipes: readonly string[],
  signal: NodeJS.Signals,
  jail: JailInfo | undefined,
): string {
  if (pipes.length === 0) return killGroupCommand(pgid, signal);
  const set = jail ? holderPipeSet('!', [], pipes) : holderPipeSet('!', [peer], pipes);
  return `sh -c ${quoteAll([HOLDER_KILL_SCRIPT, 'agentbox-kill', signal.replace(/^SIG/, ''), String(pgid), jail?.pidNamespace ?? '', set])}`;
}

/** The exit status of the channel's command; a channel that closes without one lost its connection. */
async function watchExit(
  exited: Promise<ExitStatus | undefined>,
  conn: SshConnection,
  link: Link,
  context: ErrorContext,
): Promise<{ exitCode: number | null; signal: string | null }> {
  const status = await exited;
  if (status) return { exitCode: status.signal ? null : status.code, signal: status.signal };
  const error = conn.failure(
    link,
    new Error('the channel closed without an exit status'),
    'a command',
    context,
  );
  throw error instanceof AgentboxError
    ? error
    : new SandboxUnavailableError('the command ended without an exit status (was it killed on the server?)', {
        ...context,
        cause: error,
      });
}

/**
 * Read stderr up to the wrapper's status line. Returns the status and the rest of stderr, the
 * command's own bytes exactly. Anything before the marker (a chatty login script) is dropped.
 */
async function readStatus(
  channel: ClientChannel,
  marker: Buffer,
  signal: AbortSignal | undefined,
  context: ErrorContext,
): Promise<{ status: WrapperStatus; rest: AsyncIterable<Uint8Array> }> {
  // destroyOnReturn: false — a destroyed stream would close the channel, and a channel closed by
  // us at the end of the output can beat the exit status the server was about to send.
  const it = channel.stderr.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
  let buffered = Buffer.alloc(0);
  const onAbort = () => channel.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const at = buffered.indexOf(marker);
      if (at >= 0) {
        const eol = buffered.indexOf(0x0a, at);
        if (eol >= 0) {
          const line = buffered.subarray(at + marker.length + 1, eol).toString('latin1');
          const status = parseWrapperStatus(line);
          if (!status) throw new AgentboxError(`unexpected wrapper status line "${line}"`, context);
          return { status, rest: continueWith(buffered.subarray(eol + 1), it) };
        }
      }
      const next = await it.next();
      if (signal?.aborted)
        throw new AbortedError('aborted while starting the command', { ...context, cause: signal.reason });
      if (next.done) {
        const seen = buffered.toString('utf8').trim();
        throw new AgentboxError(
          `the remote shell ended before starting the command${seen ? `: ${seen.slice(0, 500)}` : ''} (is the login shell POSIX?)`,
          context,
        );
      }
      buffered = Buffer.concat([buffered, next.value]);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

async function* continueWith(head: Buffer, it: AsyncIterator<Buffer>): AsyncGenerator<Uint8Array> {
  if (head.length > 0) yield head;
  for (;;) {
    const next = await it.next();
    if (next.done) return;
    yield next.value;
  }
}

/** stdout without the wrapper's first line (and without anything a login script printed before it). */
async function* afterMarker(channel: ClientChannel, markerLine: Buffer): AsyncGenerator<Uint8Array> {
  let buffered: Buffer | undefined = Buffer.alloc(0);
  for await (const chunk of channel.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    if (buffered === undefined) {
      yield chunk;
      continue;
    }
    buffered = Buffer.concat([buffered, chunk]);
    const at = buffered.indexOf(markerLine);
    if (at < 0) continue;
    const rest = buffered.subarray(at + markerLine.length);
    buffered = undefined;
    if (rest.length > 0) yield rest;
  }
}
