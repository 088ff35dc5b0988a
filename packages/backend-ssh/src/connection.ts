/**
 * The transport: one SSH connection per sandbox (optionally through a jump host), opened on
 * first use, reused for every command and file operation, and opened again by the next call
 * after it drops. Anything in flight on a connection that drops fails with
 * SandboxUnavailableError. Commands beyond the server's session limit wait for a channel.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { AbortedError, AgentboxError, SandboxClosedError, SandboxUnavailableError } from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import type { SshResolvedConfig } from './config.js';
import { connectEndpoint, endedClients, messageOf } from './connect.js';
import { knownHostsName } from './known-hosts.js';

/** One established connection. `dead` turns true when it closes, for whatever reason. */
export interface Link {
  readonly client: Client;
  readonly jump: Client | undefined;
  dead: boolean;
  /** What ended it, when known (socket error, keepalive timeout, ...). */
  cause: unknown;
  sftp: Promise<SFTPWrapper> | undefined;
}

/** How a remote command ended: an exit code, or the signal (`SIGKILL`...) that killed it. */
export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

/** An open exec channel. `exit` settles with undefined when the channel closed without an exit status. */
export interface ExecChannel {
  channel: ClientChannel;
  link: Link;
  exit: Promise<ExitStatus | undefined>;
  /** Settles when the channel has closed (after the end of its output). */
  closed: Promise<void>;
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** Counts commands running at once, so the server's per-connection session limit is not hit. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  async acquire(signal: AbortSignal | undefined, context: ErrorContext): Promise<() => void> {
    if (this.#free > 0) {
      this.#free--;
    } else {
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          const i = this.#waiting.indexOf(wake);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(
            new AbortedError('aborted while waiting for a free SSH channel', {
              ...context,
              cause: signal?.reason,
            }),
          );
        };
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#waiting.push(wake);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    };
  }
}

const CHANNEL_OPEN_RETRIES = 40;

export class SshConnection {
  readonly #config: SshResolvedConfig;
  readonly #context: ErrorContext;
  readonly #slots: Slots;
  #link: Promise<Link> | undefined;
  #current: Link | undefined;
  #closed = false;
  /** Times a connection was established (1 after the first); tests and logs read it. */
  connects = 0;
  /** Run on each new connection, before it is used (they must talk to the client directly). */
  readonly #onLink: ((client: Client) => Promise<void>)[] = [];

  constructor(config: SshResolvedConfig, context: ErrorContext) {
    this.#config = config;
    // Errors of the connection itself (connect, channel refused) say `connect` unless a caller names its operation.
    this.#context = { ...context, operation: context.operation ?? 'connect' };
    this.#slots = new Slots(config.maxConcurrentCommands);
  }

  get target(): string {
    return `${this.#config.user}@${knownHostsName(this.#config.host, this.#config.port)}`;
  }

  /** Local TCP port of the current connection (of the jump host's, when there is one), for diagnostics. */
  get localPort(): number | undefined {
    const link = this.#current;
    const client = link?.jump ?? link?.client;
    return (client as unknown as { _sock?: { localPort?: number } } | undefined)?._sock?.localPort;
  }

  /** @internal The live connection, connecting (again) when there is none (ssh2 types: not published). */
  link(signal?: AbortSignal): Promise<Link> {
    if (this.#closed)
      return Promise.reject(new SandboxClosedError('the SSH connection is closed', this.#context));
    if (!this.#link) {
      const pending = this.#connect();
      this.#link = pending;
      pending.catch(() => {
        if (this.#link === pending) this.#link = undefined;
      });
    }
    return withAbort(this.#link, signal, this.#context, 'while connecting');
  }

  async #connect(): Promise<Link> {
    const cfg = this.#config;
    let jump: Client | undefined;
    let sock: Duplex | undefined;
    if (cfg.jump) {
      jump = await connectEndpoint(cfg.jump, undefined, {
        ...this.#context,
        subject: `jump host ${cfg.jump.host}`,
      });
      try {
        sock = await new Promise<Duplex>((resolve, reject) =>
          jump!.forwardOut('127.0.0.1', 0, cfg.host, cfg.port, (err, stream) =>
            err ? reject(err) : resolve(stream),
          ),
        );
      } catch (error) {
        jump.end();
        throw new SandboxUnavailableError(
          `jump host ${cfg.jump.host} could not open a connection to ${knownHostsName(cfg.host, cfg.port)}: ${messageOf(error)}`,
          { ...this.#context, cause: error },
        );
      }
    }
    let client: Client;
    try {
      client = await connectEndpoint(cfg, sock, this.#context);
    } catch (error) {
      jump?.end();
      throw error;
    }
    const link: Link = { client, jump, dead: false, cause: undefined, sftp: undefined };
    const die = (cause?: unknown) => {
      if (cause !== undefined) link.cause ??= cause;
      if (link.dead) return;
      link.dead = true;
      if (this.#current === link) {
        this.#current = undefined;
        this.#link = undefined;
      }
      client.end();
      jump?.end();
    };
    // After 'ready', errors (keepalive timeout, socket reset) end the connection: record why.
    client.on('error', (error) => die(error));
    client.on('end', () => die());
    client.on('close', () => die());
    jump?.on('close', () => die(new Error('the jump host connection closed')));
    if (endedClients.has(client) || (jump && endedClients.has(jump))) {
      die();
      throw new SandboxUnavailableError(
        `the connection to ${this.target} closed right after login`,
        this.#context,
      );
    }
    if (this.#closed) {
      die();
      throw new SandboxClosedError('the SSH connection is closed', this.#context);
    }
    this.#current = link;
    this.connects++;
    for (const hook of this.#onLink) await hook(client).catch(() => {});
    return link;
  }

  /** @internal Run `hook` on every connection from now on (the current one included). */
  async onLink(hook: (client: Client) => Promise<void>): Promise<void> {
    this.#onLink.push(hook);
    const link = await this.link();
    await hook(link.client);
  }

  /** @internal The error for an operation that failed on `link`: the connection's loss if it is gone, else the error. */
  failure(link: Link, error: unknown, what: string, context: ErrorContext = this.#context): unknown {
    if (link.dead && !(error instanceof AbortedError)) {
      if (this.#closed)
        return new SandboxClosedError(`the sandbox was closed during ${what}`, { ...context, cause: error });
      const why = link.cause === undefined ? '' : ` (${messageOf(link.cause)})`;
      return new SandboxUnavailableError(
        `the SSH connection to ${this.target} was lost during ${what}${why}`,
        {
          ...context,
          cause: link.cause ?? error,
        },
      );
    }
    return error;
  }

  /**
   * Open an exec channel for `command` (run by the login shell). Commands wait for one of
   * `maxConcurrentCommands` slots; `control` commands (signals, housekeeping) do not, so a kill
   * always gets through.
   * @internal (ssh2 types: not published)
   */
  async exec(
    command: string,
    opts: { signal?: AbortSignal | undefined; control?: boolean; context?: ErrorContext } = {},
  ): Promise<ExecChannel> {
    const context = opts.context ?? this.#context;
    const release = opts.control ? () => {} : await this.#slots.acquire(opts.signal, context);
    try {
      for (let attempt = 0; ; attempt++) {
        const link = await this.link(opts.signal);
        try {
          return await new Promise<ExecChannel>((resolve, reject) => {
            try {
              link.client.exec(command, (err, channel) => {
                if (err) return reject(err);
                // Listen at once: a short command's exit status can arrive in the same read as the
                // confirmation, before any continuation of this promise runs.
                const exit = new Promise<ExitStatus | undefined>((settle) => {
                  channel.on('exit', (code: number | null, signal?: string) =>
                    settle(
                      signal
                        ? { code: null, signal: signal.startsWith('SIG') ? signal : `SIG${signal}` }
                        : { code, signal: null },
                    ),
                  );
                  channel.once('close', () => settle(undefined));
                });
                const closed = new Promise<void>((settle) => channel.once('close', () => settle()));
                channel.on('error', () => {});
                channel.once('close', release);
                resolve({ channel, link, exit, closed });
              });
            } catch (error) {
              reject(error);
            }
          });
        } catch (error) {
          if (link.dead) {
            // Dropped between calls: the next attempt reconnects, once.
            if (attempt === 0) continue;
            throw this.failure(link, error, 'exec', context);
          }
          // The server refused a channel (its per-connection session limit): wait and try again.
          if (attempt >= CHANNEL_OPEN_RETRIES) {
            throw new SandboxUnavailableError(`the server refused a new channel: ${messageOf(error)}`, {
              ...context,
              cause: error,
            });
          }
          await delay(Math.min(25 * (attempt + 1), 250), opts.signal, context);
        }
      }
    } catch (error) {
      release();
      throw error;
    }
  }

  /** @internal The connection's SFTP session, opened once per connection. */
  async sftp(signal?: AbortSignal): Promise<{ sftp: SFTPWrapper; link: Link }> {
    for (let attempt = 0; ; attempt++) {
      const link = await this.link(signal);
      if (!link.sftp) {
        const pending = new Promise<SFTPWrapper>((resolve, reject) => {
          try {
            link.client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp)));
          } catch (error) {
            reject(error);
          }
        });
        link.sftp = pending;
        pending.then(
          (sftp) => {
            sftp.on('error', () => {});
            sftp.once('close', () => {
              if (link.sftp === pending) link.sftp = undefined;
            });
          },
          () => {
            if (link.sftp === pending) link.sftp = undefined;
          },
        );
      }
      try {
        return { sftp: await withAbort(link.sftp, signal, this.#context, 'while opening SFTP'), link };
      } catch (error) {
        if (link.dead && attempt === 0) continue;
        throw this.failure(link, error, 'opening the SFTP session');
      }
    }
  }

  /** Run a housekeeping command to completion, with `stdin` (closed after) and the output collected. */
  async run(
    command: string,
    opts: {
      signal?: AbortSignal | undefined;
      stdin?: string | Uint8Array;
      control?: boolean;
      context?: ErrorContext;
    } = {},
  ): Promise<RunResult> {
    const context = opts.context ?? this.#context;
    // A login script may print before the command runs: a marker line on each stream says where its output starts.
    const marker = `agentbox-${randomBytes(9).toString('hex')}`;
    const {
      channel,
      link,
      exit: exited,
      closed,
    } = await this.exec(`printf '%s\\n' ${marker}; printf '%s\\n' ${marker} >&2; ${command}`, opts);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    channel.on('data', (chunk: Buffer) => stdout.push(chunk));
    channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const onAbort = () => channel.close();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      channel.end(opts.stdin === undefined ? undefined : Buffer.from(opts.stdin));
      const exit = await exited;
      // 'close' (which settles a missing exit) follows the end of the output: all of it is in.
      await closed;
      if (!exit) {
        if (opts.signal?.aborted)
          throw new AbortedError('aborted', { ...context, cause: opts.signal.reason });
        throw this.failure(
          link,
          new Error('the channel closed without an exit status'),
          'a remote command',
          context,
        );
      }
      return {
        ...exit,
        stdout: afterLine(Buffer.concat(stdout), marker),
        stderr: afterLine(Buffer.concat(stderr), marker),
      };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Like {@link run}, but a non-zero exit is an error carrying the command's stderr. */
  async check(command: string, opts: Parameters<SshConnection['run']>[1] = {}): Promise<Buffer> {
    const result = await this.run(command, opts);
    if (result.code !== 0) {
      throw new AgentboxError(
        `remote command failed (${result.signal ?? `exit ${result.code}`}): ${result.stderr.toString('utf8').trim() || command.slice(0, 200)}`,
        opts.context ?? this.#context,
      );
    }
    return result.stdout;
  }

  /** Drop the current connection (the next call reconnects). */
  disconnect(): void {
    const link = this.#current;
    this.#current = undefined;
    this.#link = undefined;
    if (link) {
      link.client.end();
      link.jump?.end();
    }
  }

  close(): void {
    this.#closed = true;
    this.disconnect();
  }
}

/** `data` after the first line that is exactly `line` (all of it when there is none). */
function afterLine(data: Buffer, line: string): Buffer {
  const at = data.indexOf(`${line}\n`);
  return at < 0 ? data : data.subarray(at + line.length + 1);
}

function withAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  context: ErrorContext,
  when: string,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted)
    return Promise.reject(new AbortedError(`aborted ${when}`, { ...context, cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError(`aborted ${when}`, { ...context, cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function delay(ms: number, signal: AbortSignal | undefined, context: ErrorContext): Promise<void> {
  return withAbort(
    new Promise((resolve) => setTimeout(resolve, ms)),
    signal,
    context,
    'while waiting for a channel',
  );
}
