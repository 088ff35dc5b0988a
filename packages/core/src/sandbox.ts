/**
 * BaseSandbox: everything a backend shares. A backend subclass supplies the transport (start a
 * process, read and write a file, close) and a checkpoint store; this class supplies the
 * contract: argument checks, path resolution, closed-state handling, exec on top of spawn,
 * and typed errors that name the backend and the operation.
 */
import { posix } from 'node:path';
import {
  AbortedError,
  CheckpointNotFoundError,
  type ErrorContext,
  noCheckpoint,
  OutputLimitError,
  RollbackIncompleteError,
  SandboxClosedError,
  SandboxUnavailableError,
  toAgentboxError,
  UnsupportedError,
} from './errors.js';
import {
  CheckpointOptionsSchema,
  ExecOptionsSchema,
  ReadFileOptionsSchema,
  RollbackOptionsSchema,
  WriteFileOptionsSchema,
} from './options.js';
import { decodeUtf8, encodeUtf8 } from './output.js';
import type { EnforcementReport } from './policy.js';
import { buildEnv, normalizeCommand, ProcessHandle, type RawProcess, type StartRequest } from './process.js';
import type { SessionPool } from './session/index.js';
import type {
  Capabilities,
  CapabilityName,
  CheckpointInfo,
  CheckpointOptions,
  CheckpointVerifyReport,
  Command,
  ExecHandle,
  ExecOptions,
  ExecResult,
  ReadFileOptions,
  SandboxBackend,
  SpawnOptions,
  WriteFileOptions,
} from './types.js';
import { invalidArgument, parseArgument } from './validate.js';
import { ofSize, toChunks } from './write-data.js';

export const DEFAULT_MAX_READ_BYTES = 100 * 1024 * 1024;

/** Where checkpoints live: the local tree store, a store on a remote host, a provider snapshot API... */
export interface CheckpointStore {
  create(opts: CheckpointCreateOptions): Promise<CheckpointInfo>;
  /** Restore exactly; throws CheckpointNotFoundError for an unknown id. */
  restore(id: string, signal: AbortSignal | undefined): Promise<void>;
  list(): Promise<CheckpointInfo[]>;
  delete(id: string): Promise<void>;
  /** Parse every manifest and hash every object again. Absent where there is nothing to re-hash (provider snapshots). */
  verify?(signal: AbortSignal | undefined): Promise<CheckpointVerifyReport>;
  /**
   * The record a restore keeps from its first change to the tree until it is done: present
   * means a rollback was cut short and the tree may be a mix. Absent where a restore cannot be
   * cut short halfway (a provider swaps in a whole new instance).
   */
  interruptedRollback?(signal: AbortSignal | undefined): Promise<InterruptedRollback | undefined>;
}

export interface CheckpointCreateOptions {
  label: string | undefined;
  signal: AbortSignal | undefined;
  /**
   * Called once the store has read all it keeps from the tree (what is left only writes the
   * store), so a sandbox frozen for the checkpoint can run again meanwhile. Not called when
   * the checkpoint fails first.
   */
  treeRead?: () => void;
}

/** A rollback that started changing the tree and did not finish. */
export interface InterruptedRollback {
  /** The checkpoint it was restoring; undefined when the record could not be read back. */
  checkpointId: string | undefined;
}

/** Resolve a sandbox path against the working directory (POSIX semantics, no host path rules). */
export function resolveSandboxPath(workdir: string, path: string, context: ErrorContext): string {
  if (typeof path !== 'string' || path.length === 0)
    throw invalidArgument('path', 'must be a non-empty string', context);
  if (path.includes('\0')) throw invalidArgument('path', 'contains a NUL byte', context);
  return posix.resolve(workdir, path);
}

/**
 * A new instance under the same handle, for backends that restore a checkpoint by starting a
 * new sandbox from a snapshot (`swapInstance`, called from the checkpoint store's restore).
 */
export interface InstanceSwap {
  /**
   * Point the transport at the new instance: every later call (exec, files, checkpoints) reaches
   * it. Synchronous, so that no call can slip in between.
   */
  activate(): void;
  /** The session pool of the old instance (closed) and the one opened on the new instance (warmed). */
  sessions?: { previous: SessionPool; next: SessionPool };
  /** Release the old instance once its commands are stopped and its sessions closed. */
  retire?(): Promise<void>;
}

/** The commands running on one instance; ended with a typed error when the instance is swapped out. */
class InstanceCommands {
  #replaced: string | undefined;
  readonly #live = new Map<RawProcess, () => void>();

  /** The process as the exec engine sees it: its exit rejects once its instance is replaced. */
  track(raw: RawProcess, context: ErrorContext): RawProcess {
    if (this.#replaced !== undefined) {
      raw.kill('SIGKILL').catch(() => {});
      throw new SandboxUnavailableError(this.#replaced, context);
    }
    let fail!: (error: Error) => void;
    const replaced = new Promise<never>((_, reject) => {
      fail = reject;
    });
    replaced.catch(() => {});
    this.#live.set(raw, () => fail(new SandboxUnavailableError(this.#replaced!, context)));
    const forget = () => this.#live.delete(raw);
    raw.exit.then(forget, forget);
    return {
      stdout: raw.stdout,
      stderr: raw.stderr,
      writeStdin: (chunk) => raw.writeStdin(chunk),
      closeStdin: () => raw.closeStdin(),
      kill: (signal) => raw.kill(signal),
      exit: Promise.race([raw.exit, replaced]),
    };
  }

  replace(reason: string): void {
    this.#replaced = reason;
    for (const [raw, fail] of this.#live) {
      fail();
      raw.kill('SIGKILL').catch(() => {});
    }
    this.#live.clear();
  }
}

export interface BaseSandboxInit {
  kind: string;
  id: string;
  workdir: string;
  capabilities: Capabilities;
  enforcement: EnforcementReport;
  /** Variables every command gets (before the caller's `env`), e.g. HOME. */
  baseEnv?: Record<string, string>;
}

export abstract class BaseSandbox implements SandboxBackend {
  readonly kind: string;
  readonly id: string;
  readonly workdir: string;
  readonly capabilities: Capabilities;
  readonly enforcement: EnforcementReport;
  readonly #baseEnv: Record<string, string>;
  #closing: Promise<void> | undefined;
  /** Commands still running, stopped by close(). */
  readonly #running = new Set<ProcessHandle>();
  /** The commands of the current instance (see swapInstance). */
  #instance = new InstanceCommands();
  /** Set while the tree may be a mix of two states (a rollback was cut short): see RollbackIncompleteError. */
  #incomplete: { checkpointId: string | undefined; cause?: unknown } | undefined;

  protected constructor(init: BaseSandboxInit) {
    this.kind = init.kind;
    this.id = init.id;
    this.workdir = init.workdir;
    this.capabilities = init.capabilities;
    this.enforcement = init.enforcement;
    this.#baseEnv = { HOME: init.workdir, ...init.baseEnv };
  }

  /** Start `req.argv` in its own process group (or equivalent) so the whole tree can be signalled. */
  protected abstract startProcess(req: StartRequest, signal: AbortSignal | undefined): Promise<RawProcess>;
  /** Read a whole file, refusing (OutputLimitError) before moving it if it is larger than maxBytes. */
  protected abstract readFileAt(
    path: string,
    maxBytes: number,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array>;
  /**
   * Write a file (parents created, existing file truncated), streaming the chunks. `mode` is
   * set when the caller gave one; a new file otherwise gets 0o644 (less the umask). `size`, when
   * the caller declared one, is exactly the number of bytes the chunks hold: they fail with
   * INVALID_ARGUMENT before going past it or ending short of it.
   */
  protected abstract writeFileAt(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
    signal: AbortSignal | undefined,
    size: number | undefined,
  ): Promise<void>;
  protected abstract readonly checkpoints: CheckpointStore;
  /**
   * Asked when a command died of SIGKILL (exit 137): has the sandbox's memory limit killed a process since
   * the last call (its cgroup's OOM-kill count went up)? Sets `ExecResult.oomKilled`. Backends
   * that cannot tell leave it out (always false).
   */
  protected oomKillSeen?(): Promise<boolean>;
  /** Release everything; called once. */
  protected abstract closeResources(): Promise<void>;

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  protected context(operation: string, subject?: string): ErrorContext {
    return { backend: this.kind, operation, sandboxId: this.id, subject };
  }

  protected assertOpen(operation: string): void {
    if (this.#closing) throw new SandboxClosedError(`sandbox ${this.id} is closed`, this.context(operation));
  }

  /** Refuse an operation that would use (or save) a tree a cut-short rollback may have left mixed. */
  protected assertRolledBack(operation: string): void {
    const incomplete = this.#incomplete;
    if (!incomplete) return;
    const target = incomplete.checkpointId;
    throw new RollbackIncompleteError(
      `sandbox ${this.id} needs a rollback: one${target ? ` to ${target}` : ''} was cut short, so its files may be a mix of two states. Call rollback(${target ? `'${target}'` : 'id'}) to finish it${target ? ', or roll back to another checkpoint' : ''} (listCheckpoints() lists them)`,
      target,
      { ...this.context(operation), cause: incomplete.cause },
    );
  }

  /**
   * Finish a rollback that a crash cut short: if the store holds the record of one, roll back to
   * its checkpoint again. When that cannot be done (the checkpoint is gone or damaged, the record
   * unreadable), the handle refuses commands, file access and checkpoints with
   * RollbackIncompleteError until a rollback succeeds. openSandbox calls it when it re-attaches
   * by id; it never throws. Answers the record found, if any. A store that cannot be reached at
   * all (a helper that does not start, say) is not taken for a cut-short rollback: its checkpoints
   * fail on their own then, and blocking every command of the sandbox would help no one.
   */
  async resumeInterruptedRollback(signal?: AbortSignal): Promise<InterruptedRollback | undefined> {
    let record: InterruptedRollback | undefined;
    try {
      record = await this.checkpoints.interruptedRollback?.(signal);
    } catch {
      return undefined;
    }
    if (!record) return undefined;
    this.#incomplete = { checkpointId: record.checkpointId };
    if (record.checkpointId !== undefined)
      await this.rollback(record.checkpointId, signal ? { signal } : {}).catch(() => {});
    return record;
  }

  /** Run an operation with the closed check and typed-error wrapping every public method shares. */
  protected async guard<T>(operation: string, subject: string | undefined, fn: () => Promise<T>): Promise<T> {
    this.assertOpen(operation);
    try {
      return await fn();
    } catch (error) {
      throw toAgentboxError(error, this.context(operation, subject));
    }
  }

  spawn(cmd: Command, opts: SpawnOptions = {}): ExecHandle {
    return this.#start(cmd, opts, false);
  }

  exec(cmd: Command, opts: ExecOptions = {}): Promise<ExecResult> {
    try {
      return this.#start(cmd, opts, true).wait();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #start(cmd: Command, opts: SpawnOptions, isExec: boolean): ExecHandle {
    const context = this.context(isExec ? 'exec' : 'spawn');
    this.assertOpen(context.operation!);
    this.assertRolledBack(context.operation!);
    parseArgument(ExecOptionsSchema, opts, { what: `${context.operation} options`, context });
    const argv = normalizeCommand(cmd, context);
    // What the backend says it lacks is refused here, typed and with its reason, before anything starts.
    const lacking = (name: CapabilityName) =>
      this.capabilities[name] === false
        ? (this.capabilities.unsupported?.[name] ?? `the ${this.kind} backend has no ${name}`)
        : undefined;
    const refuse = (what: string, why: string | undefined, instead: string) => {
      if (why) throw new UnsupportedError(`${what} is not supported: ${why}. ${instead}`, context);
    };
    if (!isExec)
      refuse('spawn', lacking('spawn'), 'Use exec(), which returns the output when the command ends');
    if (opts.stdin !== undefined)
      refuse('stdin', lacking('stdin'), 'Write the input to a file with writeFile() and redirect it instead');
    const cwd = resolveSandboxPath(this.workdir, opts.cwd ?? '.', context);
    const env = buildEnv(this.#baseEnv, opts.env, context);
    const instance = this.#instance;
    // `signal` aborts when the caller aborts, the deadline passes or the sandbox closes.
    const start = async (signal: AbortSignal) => {
      let raw: RawProcess;
      try {
        raw = await this.startProcess({ argv, cwd, env }, signal);
      } catch (error) {
        throw toAgentboxError(error, { ...context, subject: cwd });
      }
      return instance.track(raw, context);
    };
    const handle = new ProcessHandle(
      argv,
      start,
      {
        ...opts,
        closeStdinAfterInput: isExec,
        streaming: !isExec,
        lacking: { stdin: lacking('stdin'), kill: lacking('kill') },
        oomKilled: this.oomKillSeen ? () => this.oomKillSeen!() : undefined,
      },
      context,
    );
    this.#running.add(handle);
    void handle.settled.then(() => this.#running.delete(handle));
    return handle;
  }

  readFile(path: string, opts: ReadFileOptions = {}): Promise<Uint8Array> {
    return this.guard('readFile', path, async () => {
      parseArgument(ReadFileOptionsSchema, opts, {
        what: 'readFile options',
        context: this.context('readFile', path),
      });
      this.assertRolledBack('readFile');
      const maxBytes = opts.maxBytes ?? DEFAULT_MAX_READ_BYTES;
      const abs = resolveSandboxPath(this.workdir, path, this.context('readFile'));
      checkAborted(opts.signal, this.context('readFile', path));
      const data = await this.readFileAt(abs, maxBytes, opts.signal);
      if (data.length > maxBytes)
        throw new OutputLimitError(
          `${path} is larger than ${maxBytes} bytes`,
          maxBytes,
          data.length,
          this.context('readFile', path),
        );
      return data;
    });
  }

  async readTextFile(path: string, opts: ReadFileOptions = {}): Promise<string> {
    return decodeUtf8(await this.readFile(path, opts));
  }

  writeFile(
    path: string,
    data: string | Uint8Array | AsyncIterable<Uint8Array>,
    opts: WriteFileOptions = {},
  ): Promise<void> {
    return this.guard('writeFile', path, async () => {
      parseArgument(WriteFileOptionsSchema, opts, {
        what: 'writeFile options',
        context: this.context('writeFile', path),
      });
      this.assertRolledBack('writeFile');
      const abs = resolveSandboxPath(this.workdir, path, this.context('writeFile'));
      const mode = opts.mode;
      checkAborted(opts.signal, this.context('writeFile', path));
      const context = this.context('writeFile', path);
      const bytes = typeof data === 'string' ? encodeUtf8(data) : data;
      const chunks = toChunks(bytes, context);
      // Bytes in hand have a size too: a backend need not find their end.
      const size = opts.size ?? (bytes instanceof Uint8Array ? bytes.length : undefined);
      await this.writeFileAt(
        abs,
        opts.size === undefined ? chunks : ofSize(chunks, opts.size, context),
        mode,
        opts.signal,
        size,
      );
    });
  }

  checkpoint(opts: CheckpointOptions = {}): Promise<CheckpointInfo> {
    return this.guard('checkpoint', opts?.label, async () => {
      parseArgument(CheckpointOptionsSchema, opts, {
        what: 'checkpoint options',
        context: this.context('checkpoint'),
      });
      checkAborted(opts.signal, this.context('checkpoint'));
      // A checkpoint of a half-restored tree would save the mix as if it were a state.
      this.assertRolledBack('checkpoint');
      return this.checkpoints.create({ label: opts.label, signal: opts.signal });
    });
  }

  rollback(to: CheckpointInfo | string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const id = typeof to === 'string' ? to : to?.id;
    return this.guard('rollback', id, async () => {
      parseArgument(RollbackOptionsSchema, opts, {
        what: 'rollback options',
        context: this.context('rollback', id),
      });
      if (typeof id !== 'string' || id === '')
        throw new CheckpointNotFoundError(noCheckpoint(id), this.context('rollback'));
      checkAborted(opts.signal, this.context('rollback', id));
      try {
        await this.checkpoints.restore(id, opts.signal);
      } catch (error) {
        // A store drops its record when it can report the failure itself; one still there (the
        // store became unreachable halfway) means the tree may be a mix.
        const record = await this.checkpoints.interruptedRollback?.(undefined).catch(() => undefined);
        if (record) this.#incomplete = { checkpointId: record.checkpointId, cause: error };
        throw error;
      }
      this.#incomplete = undefined;
    });
  }

  listCheckpoints(): Promise<CheckpointInfo[]> {
    return this.guard('listCheckpoints', undefined, () => this.checkpoints.list());
  }

  deleteCheckpoint(id: string): Promise<void> {
    // A JavaScript caller may pass anything: only a non-empty string can name a checkpoint.
    const named = typeof id === 'string' && id !== '' ? id : undefined;
    return this.guard('deleteCheckpoint', named, async () => {
      if (named === undefined)
        throw new CheckpointNotFoundError(noCheckpoint(id), this.context('deleteCheckpoint'));
      await this.checkpoints.delete(named);
    });
  }

  verifyCheckpoints(opts: { signal?: AbortSignal } = {}): Promise<CheckpointVerifyReport> {
    return this.guard('verifyCheckpoints', undefined, async () => {
      parseArgument(RollbackOptionsSchema, opts, {
        what: 'verifyCheckpoints options',
        context: this.context('verifyCheckpoints'),
      });
      checkAborted(opts.signal, this.context('verifyCheckpoints'));
      if (!this.checkpoints.verify)
        throw new UnsupportedError(
          `the ${this.kind} backend's checkpoint store has no scrub (provider snapshots, say, have no objects of ours to re-hash)`,
          this.context('verifyCheckpoints'),
        );
      return this.checkpoints.verify(opts.signal);
    });
  }

  /**
   * Swap the instance under this handle (a rollback that starts a new sandbox from a snapshot).
   * The handle keeps its id; commands still running on the old instance end with a
   * SandboxUnavailableError and are killed; its sessions are closed and the new instance's
   * opened; every later call goes to the new instance.
   */
  protected async swapInstance(swap: InstanceSwap): Promise<void> {
    this.assertOpen('rollback');
    const old = this.#instance;
    this.#instance = new InstanceCommands();
    swap.activate();
    old.replace(
      `sandbox ${this.id} was rolled back while this command ran: it ran on the instance the rollback replaced`,
    );
    await swap.sessions?.previous.close();
    await swap.retire?.();
    await swap.sessions?.next.warm();
  }

  close(): Promise<void> {
    if (!this.#closing) for (const handle of this.#running) handle.stopForClose();
    this.#closing ??= this.closeResources()
      .catch((error) => {
        throw toAgentboxError(error, this.context('close'));
      })
      .finally(() => {
        for (const handle of this.#running) handle.sandboxClosed();
      });
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export function checkAborted(signal: AbortSignal | undefined, context: ErrorContext): void {
  if (signal?.aborted) throw new AbortedError('aborted', { ...context, cause: signal.reason });
}

/**
 * Bound one API request of a backend's transport (its `requestTimeoutMs`, see TransportOptions):
 * past `timeoutMs` the request's signal aborts and the call rejects with a retryable
 * SandboxUnavailableError. Without `timeoutMs` the request runs unbounded. Pass a function to
 * get the signal (hand it to the SDK call so the request is cancelled, not just abandoned).
 */
export async function withRequestTimeout<T>(
  request: Promise<T> | ((signal: AbortSignal) => Promise<T>),
  timeoutMs: number | undefined,
  context: ErrorContext,
): Promise<T> {
  if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs <= 0))
    throw invalidArgument('requestTimeoutMs', 'must be a positive number', context);
  const controller = new AbortController();
  const pending = typeof request === 'function' ? request(controller.signal) : request;
  if (timeoutMs === undefined) return pending;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new SandboxUnavailableError(`the request got no answer within ${timeoutMs} ms`, context);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    return await Promise.race([pending, expired]);
  } finally {
    clearTimeout(timer);
    // The abandoned request may still fail later: that is no longer anyone's error.
    pending.catch(() => {});
  }
}
