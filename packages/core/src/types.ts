/** The contract every backend implements. Semantics are documented in DESIGN.md §2 and checked by @agentbox/conformance. */

import type { EnforcementReport } from './policy.js';
import type { SignalInput } from './signals.js';

/** A command: a string runs through `sh -c`; an array runs as argv with no shell. */
export type Command = string | readonly string[];

/** Bytes for stdin: text (UTF-8), raw bytes, or a stream of chunks. */
export type StdinSource = string | Uint8Array | AsyncIterable<Uint8Array>;

export interface ExecOptions {
  /** Working directory; relative paths resolve against the sandbox working directory (the default). */
  cwd?: string;
  /** Extra environment variables. The sandbox does not inherit the host environment. */
  env?: Readonly<Record<string, string>>;
  /** Input for the command. Without it, stdin is closed (a command reading it sees EOF at once). */
  stdin?: StdinSource;
  /**
   * Kill the command's whole process tree after this long and throw a TimeoutError. Counted
   * from the call: waiting for a free channel or slot and starting the process count against it.
   * (A backend's `requestTimeoutMs`, see {@link TransportOptions}, bounds one API request instead.)
   */
  timeoutMs?: number;
  /** Aborting kills the command's process tree and rejects with an AbortedError. */
  signal?: AbortSignal;
  /**
   * On a timeout or an abort, send SIGTERM to the process tree first and SIGKILL only after
   * this many ms (or as soon as the command's leader has exited). Default 0: SIGKILL at once.
   */
  killGraceMs?: number;
  /** Cap per stream (default 10 MiB). The head and the tail are kept; `truncated` says which was cut. */
  maxOutputBytes?: number;
  /** Called with every chunk as it arrives (whole stream, not capped). */
  onStdout?: (chunk: Uint8Array) => void;
  onStderr?: (chunk: Uint8Array) => void;
}

export type SpawnOptions = Omit<ExecOptions, 'stdin'> & {
  /** Input written then closed. When omitted, stdin stays open for `writeStdin` until `closeStdin`. */
  stdin?: StdinSource;
};

export interface ExecResult {
  /** Exit status; 128+n when the process died of signal n (as a shell reports it). */
  exitCode: number;
  /** Name of the signal that ended the process, e.g. `SIGKILL`, or null for a normal exit. */
  signal: string | null;
  /**
   * The command died of SIGKILL (or exited 137, as a shell reports that death) and the sandbox's
   * memory limit killed a process meanwhile (its
   * cgroup counted an OOM kill): out of memory, not a kill by someone. Always false on backends
   * that cannot tell (see the backend's README).
   */
  oomKilled: boolean;
  /** Decoded UTF-8 (invalid sequences replaced); the exact bytes are in `stdoutBytes`. */
  stdout: string;
  stderr: string;
  stdoutBytes: Uint8Array;
  stderrBytes: Uint8Array;
  /** Which stream hit `maxOutputBytes`; when true the middle was dropped and head and tail kept. */
  truncated: { stdout: boolean; stderr: boolean };
  /** Total bytes the command wrote to each stream, including any dropped. */
  totalBytes: { stdout: number; stderr: number };
  durationMs: number;
  /** The argv that ran (a string command shows as `['sh', '-c', cmd]`). */
  command: readonly string[];
}

/** A running command. Output is streamed; `wait()` gives the same result `exec` would. */
export interface ExecHandle {
  readonly stdout: AsyncIterable<Uint8Array>;
  readonly stderr: AsyncIterable<Uint8Array>;
  /**
   * Rejects with InvalidArgumentError once stdin is closed (closeStdin, or the command ended or
   * closed its input), SandboxClosedError after close(), or the error that kept the command from starting.
   */
  writeStdin(data: string | Uint8Array): Promise<void>;
  closeStdin(): Promise<void>;
  /**
   * Send a signal to the command's whole process tree (default SIGTERM). A Linux name with or
   * without `SIG` (`'TERM'`, `'sigterm'`) or a number (15); anything else is an InvalidArgumentError.
   */
  kill(signal?: SignalInput): Promise<void>;
  /** Resolves with the result; rejects with TimeoutError/AbortedError/SandboxUnavailableError. */
  wait(): Promise<ExecResult>;
}

export interface ReadFileOptions {
  /** Refuse (OutputLimitError, before moving the data) files larger than this. Default 100 MiB. */
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface WriteFileOptions {
  /** File mode for a new file, e.g. 0o755. Default 0o644. */
  mode?: number;
  /**
   * The data's length in bytes, when it is a stream whose length you know (a file's size). A
   * backend can then send the stream as it comes instead of first finding its end. Data that
   * turns out longer or shorter fails the write with INVALID_ARGUMENT.
   */
  size?: number;
  signal?: AbortSignal;
}

export interface CheckpointInfo {
  id: string;
  label: string | undefined;
  /** ISO 8601 time of creation. */
  createdAt: string;
  /** Entries (files, directories, links) captured. */
  entries: number;
  /** Bytes moved into the checkpoint store for this checkpoint (what changed since the previous one). */
  bytesStored: number;
}

/** A damaged object of the checkpoint store, and the checkpoints it breaks. */
export interface DamagedObject {
  /** The object's name in the store (a SHA-256, or `pack/path` where the store keeps packs). */
  object: string;
  /** `missing`: gone or unreadable; `mismatch`: its content no longer has its hash. */
  reason: 'missing' | 'mismatch';
  /** Checkpoints whose rollback needs it (and is refused until it is whole again). */
  checkpoints: string[];
}

/** A checkpoint whose manifest could not be read, parsed or authenticated: never restored, not listed. */
export interface DamagedManifest {
  id: string;
  reason: string;
}

/** What `verifyCheckpoints()` found: every manifest parsed again, every object hashed again. */
export interface CheckpointVerifyReport {
  /** True when no manifest and no object is damaged. */
  ok: boolean;
  /** Checkpoints whose manifest and objects are all whole, oldest first. */
  intact: string[];
  damagedManifests: DamagedManifest[];
  damagedObjects: DamagedObject[];
  /** Objects hashed. */
  objectsChecked: number;
  /**
   * A rollback that started changing the tree and did not finish (the process died, say): the
   * checkpoint it was restoring (`undefined` inside when the record itself is unreadable).
   */
  interruptedRollback: { checkpointId: string | undefined } | undefined;
}

export interface CheckpointOptions {
  label?: string;
  signal?: AbortSignal;
}

/** The things a backend may lack; each is a boolean in {@link Capabilities}. */
export type CapabilityName =
  | 'checkpoints'
  | 'spawn'
  | 'stdin'
  | 'kill'
  | 'nonRootUser'
  | 'networkPolicy'
  | 'reattach';

export interface Capabilities {
  /** What separates the sandbox from the host: nothing, a container, a VM, another machine. */
  isolation: 'none' | 'container' | 'vm' | 'remote-host';
  checkpoints: boolean;
  /** Streaming spawn: output read while the command runs. */
  spawn: boolean;
  /** Commands get input: exec's `stdin` option and spawn's `writeStdin`/`closeStdin`. */
  stdin: boolean;
  /** `ExecHandle.kill` delivers the signal asked for to the command's tree (timeouts and aborts stop commands either way). */
  kill: boolean;
  /** Commands run as a user without root privileges, so permission checks apply. */
  nonRootUser: boolean;
  /** The policy's network controls (no network, an allowlist) can be enforced. */
  networkPolicy: boolean;
  /** Re-attach to an existing sandbox by id. */
  reattach: boolean;
  /**
   * Why each capability that is false is missing, in the backend's words. A call that needs a
   * missing spawn, stdin or kill is an UnsupportedError with this reason; the suite prints it when it skips.
   */
  unsupported?: Partial<Record<CapabilityName, string>>;
}

/**
 * Transport options of a backend whose commands and files go through an API (REST, gRPC): part
 * of its config, not of a command. See `withRequestTimeout` in the backend kit.
 */
export interface TransportOptions {
  /**
   * Give up on one API request (start a command, poll it, move a file) after this long, with a
   * retryable SandboxUnavailableError. It is not a command's `timeoutMs`, which bounds the whole
   * command from the call and kills its tree.
   */
  requestTimeoutMs?: number;
}

export interface SandboxBackend extends AsyncDisposable {
  readonly kind: string;
  /** Stable id of this sandbox (used for labels, logs, re-attach and sweep). */
  readonly id: string;
  /** Absolute path of the working directory inside the sandbox. */
  readonly workdir: string;
  readonly capabilities: Capabilities;
  /** What each policy control got: enforced, not supported, or not requested. */
  readonly enforcement: EnforcementReport;

  exec(cmd: Command, opts?: ExecOptions): Promise<ExecResult>;
  spawn(cmd: Command, opts?: SpawnOptions): ExecHandle;

  readFile(path: string, opts?: ReadFileOptions): Promise<Uint8Array>;
  readTextFile(path: string, opts?: ReadFileOptions): Promise<string>;
  /** Writes (creating missing parent directories, truncating an existing file). */
  writeFile(
    path: string,
    data: string | Uint8Array | AsyncIterable<Uint8Array>,
    opts?: WriteFileOptions,
  ): Promise<void>;

  checkpoint(opts?: CheckpointOptions): Promise<CheckpointInfo>;
  /** Restore the filesystem state of a checkpoint, in place: this handle keeps working. */
  rollback(to: CheckpointInfo | string, opts?: { signal?: AbortSignal }): Promise<void>;
  listCheckpoints(): Promise<CheckpointInfo[]>;
  deleteCheckpoint(id: string): Promise<void>;
  /**
   * Scrub the checkpoint store: parse every manifest and hash every object again, and say what
   * is damaged and which checkpoints that breaks. A rollback to a broken checkpoint is refused
   * (CHECKPOINT_CORRUPT) before anything changes. UNSUPPORTED where checkpoints are provider
   * snapshots with nothing to re-hash.
   */
  verifyCheckpoints(opts?: { signal?: AbortSignal }): Promise<CheckpointVerifyReport>;

  /** Idempotent; releases every resource (and, unless kept, the sandbox itself). */
  close(): Promise<void>;
}
