/** Assertions and sandbox-side snippets the cases share. Everything run inside a sandbox is POSIX sh + busybox. */
import { createHash, randomBytes as nodeRandomBytes } from 'node:crypto';
import {
  AbortedError,
  AgentboxError,
  CheckpointNotFoundError,
  type ErrorCode,
  type ExecOptions,
  type ExecResult,
  InvalidArgumentError,
  IsADirectoryError,
  isAgentboxError,
  NotFoundError,
  OutputLimitError,
  PermissionDeniedError,
  type SandboxBackend,
  SandboxClosedError,
  TimeoutError,
} from '@agentbox/core';
import { expect } from 'vitest';

/** Run a command and require exit 0, showing stderr when it is not. */
export async function run(
  sandbox: SandboxBackend,
  cmd: string | readonly string[],
  opts?: ExecOptions,
): Promise<ExecResult> {
  const result = await sandbox.exec(cmd, opts);
  expect(
    result.exitCode,
    `${JSON.stringify(cmd).slice(0, 200)} failed: ${result.stderr.slice(0, 2000)}`,
  ).toBe(0);
  return result;
}

/** Standard output of a command that must succeed. */
export async function output(
  sandbox: SandboxBackend,
  cmd: string | readonly string[],
  opts?: ExecOptions,
): Promise<string> {
  return (await run(sandbox, cmd, opts)).stdout;
}

/**
 * Require `action` to fail with a typed error of `code` that names the backend and the operation.
 * A synchronous throw counts as failing.
 */
export async function expectError(
  sandbox: SandboxBackend,
  code: ErrorCode,
  action: () => unknown,
  operation?: string,
): Promise<AgentboxError> {
  let caught: unknown;
  let threw = false;
  try {
    await action();
  } catch (error) {
    caught = error;
    threw = true;
  }
  expect(threw, `expected an error with code ${code}, but the call succeeded`).toBe(true);
  expectTyped(caught, code, sandbox.kind, operation);
  return caught as AgentboxError;
}

/** The class each code belongs to; `instanceof` must agree with `.code`. */
const CLASS_OF: Partial<Record<ErrorCode, abstract new (...args: never[]) => AgentboxError>> = {
  NOT_FOUND: NotFoundError,
  PERMISSION_DENIED: PermissionDeniedError,
  IS_A_DIRECTORY: IsADirectoryError,
  TIMEOUT: TimeoutError,
  OUTPUT_LIMIT: OutputLimitError,
  SANDBOX_CLOSED: SandboxClosedError,
  CHECKPOINT_NOT_FOUND: CheckpointNotFoundError,
  INVALID_ARGUMENT: InvalidArgumentError,
  ABORTED: AbortedError,
};

/** The checks every typed error passes: an Error, branded, with a `.code`, `.backend` and `.operation`. */
export function expectTyped(error: unknown, code: ErrorCode, backend: string, operation?: string): void {
  const described = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  expect(error instanceof Error, `not an Error: ${described}`).toBe(true);
  expect(isAgentboxError(error), `not an agentbox error: ${described}`).toBe(true);
  const typed = error as AgentboxError;
  expect(typed.code, described).toBe(code);
  const cls = CLASS_OF[code];
  if (cls) expect(error instanceof cls, `${described} is not an instance of ${cls.name}`).toBe(true);
  expect(typed.backend, `.backend of ${described}`).toBe(backend);
  expect(typeof typed.operation, `.operation of ${described}`).toBe('string');
  expect(typed.operation!.length, `.operation of ${described}`).toBeGreaterThan(0);
  if (operation !== undefined) expect(typed.operation, `.operation of ${described}`).toBe(operation);
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function randomBytes(size: number): Uint8Array {
  return new Uint8Array(nodeRandomBytes(size));
}

/** Byte-exact comparison with a short failure message, even for tens of MiB. */
export function expectBytes(actual: Uint8Array, expected: Uint8Array, what = 'bytes'): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  if (expected.length <= 4096) {
    expect(Buffer.from(actual).toString('hex'), what).toBe(Buffer.from(expected).toString('hex'));
  } else {
    expect(sha256(actual), `${what}: sha256`).toBe(sha256(expected));
  }
}

/** sha256 of a file, computed inside the sandbox. */
export async function sandboxSha256(sandbox: SandboxBackend, path: string): Promise<string> {
  const out = await output(sandbox, ['sh', '-c', 'sha256sum < "$1"', 'sh', path]);
  return out.trim().split(/\s+/)[0]!;
}

/** A number no other test or process uses, to find this case's processes in `ps` (as `sleep <marker>`). */
export function marker(): string {
  return String(700_000 + Math.floor(Math.random() * 290_000));
}

/** Command lines of the processes the sandbox can see (busybox and procps `ps` both take `-eo`). */
export async function processList(sandbox: SandboxBackend): Promise<string[]> {
  const out = await output(sandbox, 'ps -eo pid,args 2>/dev/null || ps -o pid,args');
  return out.split('\n').slice(1);
}

/**
 * The processes running exactly `sleep <marker>`. A shell whose script mentions the marker does not
 * count (its command line starts with `sh`), nor does a zombie (shown as `[sleep]`).
 */
export async function sleepers(sandbox: SandboxBackend, mark: string): Promise<string[]> {
  const pattern = new RegExp(`^\\s*\\d+\\s+(\\S*/)?sleep ${mark}\\s*$`);
  return (await processList(sandbox)).filter((line) => pattern.test(line));
}

/** Poll until `check` returns true or the time is up; returns the last answer. */
export async function eventually(
  check: () => Promise<boolean>,
  withinMs: number,
  everyMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with the first chunk of a stream containing `text` (the chunks are collected until then). */
export function waitForOutput(text: string): { onChunk: (chunk: Uint8Array) => void; seen: Promise<void> } {
  let buffered = '';
  let resolve!: () => void;
  const seen = new Promise<void>((r) => {
    resolve = r;
  });
  const decoder = new TextDecoder();
  return {
    onChunk(chunk) {
      buffered += decoder.decode(chunk, { stream: true });
      if (buffered.includes(text)) resolve();
    },
    seen,
  };
}

/** Reject if `promise` has not settled within `ms`, naming what was awaited. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AgentboxError(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(chunks));
}

export const MiB = 1024 * 1024;
