/**
 * One error hierarchy for every backend. Callers branch on `.code` (stable, literal) or on
 * `instanceof`, which keeps working when two copies of @agentbox/core end up installed
 * (each class brands its instances with a `Symbol.for` key).
 */

export type ErrorCode =
  | 'NOT_FOUND'
  | 'PERMISSION_DENIED'
  | 'IS_A_DIRECTORY'
  | 'TIMEOUT'
  | 'OUTPUT_LIMIT'
  | 'SANDBOX_UNAVAILABLE'
  | 'SANDBOX_CLOSED'
  | 'POLICY_NOT_ENFORCEABLE'
  | 'CHECKPOINT_NOT_FOUND'
  | 'CHECKPOINT_CORRUPT'
  | 'UNSUPPORTED'
  | 'INVALID_ARGUMENT'
  | 'AUTHENTICATION'
  | 'NO_SPACE'
  | 'ABORTED'
  | 'MODEL_UNAVAILABLE'
  | 'ROLLBACK_INCOMPLETE'
  | 'INTERNAL';

export interface ErrorContext {
  /** Backend kind, e.g. `docker`. */
  backend?: string | undefined;
  /** Operation that failed, e.g. `exec`, `readFile`, `open`. */
  operation?: string | undefined;
  /** Sandbox id, when one exists. */
  sandboxId?: string | undefined;
  /** Path or command the operation was about. */
  subject?: string | undefined;
  cause?: unknown;
}

const BRAND = Symbol.for('agentbox.error');

function brandOf(code: ErrorCode | '*'): symbol {
  return Symbol.for(`agentbox.error.${code}`);
}

export class AgentboxError extends Error {
  // code, status and retryable live on each class's prototype (see `define`), not on instances.
  /** Stable machine-readable kind of failure. */
  declare readonly code: ErrorCode;
  /** HTTP-status-like number for callers that map errors to responses. */
  declare readonly status: number;
  /** Whether the same call may succeed if repeated later. */
  declare readonly retryable: boolean;
  readonly backend: string | undefined;
  readonly operation: string | undefined;
  readonly sandboxId: string | undefined;
  readonly subject: string | undefined;

  constructor(message: string, context: ErrorContext = {}) {
    const where = [context.backend, context.operation].filter(Boolean).join('.');
    super(
      where ? `${where}: ${message}` : message,
      context.cause === undefined ? {} : { cause: context.cause },
    );
    this.name = new.target.name;
    this.backend = context.backend;
    this.operation = context.operation;
    this.sandboxId = context.sandboxId;
    this.subject = context.subject;
  }

  /**
   * What `JSON.stringify(error)` shows: the name, code, message, where it happened, the fields of
   * its kind (issues, limits, partial output...) and the cause, serialised recursively. No stack.
   */
  toJSON(): Record<string, unknown> {
    return errorJson(this, new WeakSet());
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null || !(BRAND in value)) return false;
    // `this` is the class `instanceof` was called on; AgentboxError itself matches every branded error.
    // biome-ignore lint/complexity/noThisInStatic: the subclass that `instanceof` asks about is the point.
    const code = (this as unknown as { brandCode?: ErrorCode }).brandCode;
    if (code === undefined) return true;
    return brandOf(code) in value;
  }
}
Object.defineProperty(AgentboxError.prototype, BRAND, { value: true });
Object.defineProperty(AgentboxError.prototype, 'code', { value: 'INTERNAL', enumerable: true });
Object.defineProperty(AgentboxError.prototype, 'status', { value: 500, enumerable: true });
Object.defineProperty(AgentboxError.prototype, 'retryable', { value: false, enumerable: true });

type Ctor = abstract new (...args: never[]) => AgentboxError;

function define<T extends Ctor>(cls: T, code: ErrorCode, status: number, retryable = false): T {
  Object.defineProperty(cls, 'brandCode', { value: code });
  Object.defineProperty(cls.prototype, 'code', { value: code, enumerable: true });
  Object.defineProperty(cls.prototype, 'status', { value: status, enumerable: true });
  Object.defineProperty(cls.prototype, 'retryable', { value: retryable, enumerable: true });
  Object.defineProperty(cls.prototype, brandOf(code), { value: true });
  return cls;
}

// Class fields would shadow the prototype values set by `define`, so subclasses declare only types.
export class NotFoundError extends AgentboxError {
  declare readonly code: 'NOT_FOUND';
}
export class PermissionDeniedError extends AgentboxError {
  declare readonly code: 'PERMISSION_DENIED';
}
export class IsADirectoryError extends AgentboxError {
  declare readonly code: 'IS_A_DIRECTORY';
}
export class OutputLimitError extends AgentboxError {
  declare readonly code: 'OUTPUT_LIMIT';
  /** The limit that was exceeded, in bytes. */
  readonly limitBytes: number;
  /** Size of the thing that exceeded it, when known. */
  readonly actualBytes: number | undefined;
  constructor(
    message: string,
    limitBytes: number,
    actualBytes: number | undefined,
    context: ErrorContext = {},
  ) {
    super(message, context);
    this.limitBytes = limitBytes;
    this.actualBytes = actualBytes;
  }
}
export class SandboxUnavailableError extends AgentboxError {
  declare readonly code: 'SANDBOX_UNAVAILABLE';
}
export class SandboxClosedError extends AgentboxError {
  declare readonly code: 'SANDBOX_CLOSED';
}
export class PolicyNotEnforceableError extends AgentboxError {
  declare readonly code: 'POLICY_NOT_ENFORCEABLE';
  /** The controls that were requested but cannot be enforced, with the reason for each. */
  readonly controls: Readonly<Record<string, string>>;
  constructor(message: string, controls: Record<string, string>, context: ErrorContext = {}) {
    super(message, context);
    this.controls = controls;
  }
}
export class CheckpointNotFoundError extends AgentboxError {
  declare readonly code: 'CHECKPOINT_NOT_FOUND';
}
/** The message for a checkpoint id that names no checkpoint, with where to find the ones that exist. */
export function noCheckpoint(id: unknown): string {
  return `no checkpoint ${shownValue(id)}: listCheckpoints() lists the ones this sandbox has`;
}

/** Any value as text for an error message, never throwing (a null-prototype object has no toString). */
export function shownValue(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    // A bigint, a cycle, no toString: the message names the kind of value instead.
    return Object.prototype.toString.call(value);
  }
}
/** A checkpoint failed validation (bad manifest, wrong MAC, object hash mismatch): never restored. */
export class CheckpointCorruptError extends AgentboxError {
  declare readonly code: 'CHECKPOINT_CORRUPT';
}
export class UnsupportedError extends AgentboxError {
  declare readonly code: 'UNSUPPORTED';
}
export class InvalidArgumentError extends AgentboxError {
  declare readonly code: 'INVALID_ARGUMENT';
  /**
   * Each problem as `path: message`, e.g. `policy.limits.pids: must be a positive integer`.
   * Never empty: without a list from the caller, the message is the one issue.
   */
  readonly issues: readonly string[];
  constructor(message: string, context: ErrorContext & { issues?: readonly string[] } = {}) {
    const { issues, ...rest } = context;
    super(message, rest);
    this.issues = issues?.length ? [...issues] : [message];
  }
}
export class AuthenticationError extends AgentboxError {
  declare readonly code: 'AUTHENTICATION';
}
/** A write ran out of space: the sandbox's disk quota (or the filesystem under it) is full. */
export class NoSpaceError extends AgentboxError {
  declare readonly code: 'NO_SPACE';
}
export class AbortedError extends AgentboxError {
  declare readonly code: 'ABORTED';
}
/** A model endpoint could not be reached or did not answer (connection refused, DNS, timeout, 5xx). */
export class ModelUnavailableError extends AgentboxError {
  declare readonly code: 'MODEL_UNAVAILABLE';
  /** The URL that was asked. */
  readonly url: string;
  constructor(message: string, url: string, context: ErrorContext = {}) {
    super(message, context);
    this.url = url;
  }
}

/**
 * A rollback started changing the sandbox's files and its process died before it finished, and
 * the re-attach could not finish it: the files may be a mix of two states, so commands, file
 * access and checkpoints are refused until a rollback (to `checkpointId` or any other) succeeds.
 */
export class RollbackIncompleteError extends AgentboxError {
  declare readonly code: 'ROLLBACK_INCOMPLETE';
  /** The checkpoint the interrupted rollback was restoring, when its record says. */
  readonly checkpointId: string | undefined;
  constructor(message: string, checkpointId: string | undefined, context: ErrorContext = {}) {
    super(message, context);
    this.checkpointId = checkpointId;
  }
}

/** What a command had produced when it was stopped; carried by {@link TimeoutError}. */
export interface PartialOutput {
  stdout: string;
  stderr: string;
  stdoutBytes: Uint8Array;
  stderrBytes: Uint8Array;
  durationMs: number;
}

export class TimeoutError extends AgentboxError {
  declare readonly code: 'TIMEOUT';
  readonly timeoutMs: number;
  /** Output produced before the deadline (head and tail kept, as in a result). */
  readonly partial: PartialOutput;
  constructor(message: string, timeoutMs: number, partial: PartialOutput, context: ErrorContext = {}) {
    super(message, context);
    this.timeoutMs = timeoutMs;
    this.partial = partial;
  }
  get stdout(): string {
    return this.partial.stdout;
  }
  get stderr(): string {
    return this.partial.stderr;
  }
}

define(NotFoundError, 'NOT_FOUND', 404);
define(PermissionDeniedError, 'PERMISSION_DENIED', 403);
define(IsADirectoryError, 'IS_A_DIRECTORY', 409);
define(TimeoutError, 'TIMEOUT', 408);
define(OutputLimitError, 'OUTPUT_LIMIT', 413);
define(SandboxUnavailableError, 'SANDBOX_UNAVAILABLE', 503, true);
define(SandboxClosedError, 'SANDBOX_CLOSED', 410);
define(PolicyNotEnforceableError, 'POLICY_NOT_ENFORCEABLE', 422);
define(CheckpointNotFoundError, 'CHECKPOINT_NOT_FOUND', 404);
define(CheckpointCorruptError, 'CHECKPOINT_CORRUPT', 422);
define(UnsupportedError, 'UNSUPPORTED', 501);
define(InvalidArgumentError, 'INVALID_ARGUMENT', 400);
define(AuthenticationError, 'AUTHENTICATION', 401);
define(AbortedError, 'ABORTED', 499);
define(NoSpaceError, 'NO_SPACE', 507);
define(ModelUnavailableError, 'MODEL_UNAVAILABLE', 503, true);
define(RollbackIncompleteError, 'ROLLBACK_INCOMPLETE', 409);

const SERIALISED_DEPTH = 8;

/** An error as plain JSON: for a typed one its code and context first, then its own fields, then the cause. */
function errorJson(error: Error, seen: WeakSet<object>, depth = 0): Record<string, unknown> {
  seen.add(error);
  try {
    return errorFields(error, seen, depth);
  } finally {
    seen.delete(error);
  }
}

function errorFields(error: Error, seen: WeakSet<object>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { name: error.name, message: error.message };
  if (error instanceof AgentboxError) {
    Object.assign(out, {
      code: error.code,
      status: error.status,
      retryable: error.retryable,
      backend: error.backend,
      operation: error.operation,
      sandboxId: error.sandboxId,
      subject: error.subject,
    });
  }
  // Own fields: a typed error's issues or partial output, Node's errno code, syscall, address, port.
  for (const [key, value] of Object.entries(error)) {
    if (key in out || key === 'cause' || key === 'stack') continue;
    const json = jsonValue(value, seen, depth + 1);
    if (json !== undefined) out[key] = json;
  }
  if (error instanceof AggregateError && !('errors' in out))
    out.errors = jsonValue(error.errors, seen, depth + 1);
  if (error.cause !== undefined) out.cause = jsonValue(error.cause, seen, depth + 1);
  return out;
}

/** Any value made safe for JSON: cycles cut, bytes and functions left out, depth bounded. */
function jsonValue(value: unknown, seen: WeakSet<object>, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'symbol':
      return value.toString();
    case 'undefined':
    case 'function':
      return undefined;
  }
  if (value === null) return null;
  const object = value as object;
  if (seen.has(object)) return '[Circular]';
  if (depth > SERIALISED_DEPTH) return '[…]';
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) return undefined;
  if (object instanceof Error) return errorJson(object, seen, depth);
  seen.add(object);
  try {
    if (Array.isArray(object)) return object.map((item) => jsonValue(item, seen, depth + 1) ?? null);
    const custom = (object as { toJSON?: unknown }).toJSON;
    if (typeof custom === 'function') return jsonValue(custom.call(object), seen, depth + 1);
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(object)) {
      const json = jsonValue(item, seen, depth + 1);
      if (json !== undefined) out[key] = json;
    }
    return out;
  } catch {
    // A getter that throws, a proxy: say what it was rather than fail the whole error.
    return Object.prototype.toString.call(object);
  } finally {
    seen.delete(object);
  }
}

export function isAgentboxError(value: unknown): value is AgentboxError {
  return value instanceof AgentboxError;
}

/** Errno-style codes (Node fs, SFTP mapped by the backend, shell tools) to typed errors. */
export function fromErrno(errno: string | undefined, message: string, context: ErrorContext): AgentboxError {
  switch (errno) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new NotFoundError(message, context);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new PermissionDeniedError(message, context);
    case 'EISDIR':
      return new IsADirectoryError(message, context);
    case 'ENOSPC':
    case 'EDQUOT':
      return new NoSpaceError(message, context);
    case 'EINVAL':
    case 'ENAMETOOLONG':
      return new InvalidArgumentError(message, context);
    default:
      return new AgentboxError(message, context);
  }
}

/**
 * Wrap anything thrown into an AgentboxError with context. A typed error keeps its class and
 * message; context it lacks (a transport threw it without knowing the backend or operation) is
 * filled in.
 */
export function toAgentboxError(error: unknown, context: ErrorContext): AgentboxError {
  if (error instanceof AgentboxError) {
    const fields = error as { -readonly [K in 'backend' | 'operation' | 'sandboxId' | 'subject']?: string };
    fields.backend ??= context.backend;
    fields.operation ??= context.operation;
    fields.sandboxId ??= context.sandboxId;
    fields.subject ??= context.subject;
    return error;
  }
  if (error instanceof Error && error.name === 'AbortError')
    return new AbortedError(error.message, { ...context, cause: error });
  const errno = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return fromErrno(typeof errno === 'string' ? errno : undefined, message, { ...context, cause: error });
}
