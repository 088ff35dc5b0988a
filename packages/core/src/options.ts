/**
 * The option objects of the sandbox API as zod schemas, so that JavaScript callers get what the
 * TypeScript types promise: a misspelled key (`timeoutMS`) or a value of the wrong type is an
 * InvalidArgumentError naming it, never silently ignored.
 */
import { z } from 'zod';
import type { StdinSource } from './types.js';

/** An AbortSignal, judged by its shape (a polyfill or another realm's signal counts). */
export const abortSignalSchema = z.custom<AbortSignal>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AbortSignal).aborted === 'boolean' &&
    typeof (value as AbortSignal).addEventListener === 'function',
  { message: 'must be an AbortSignal' },
);

const stdinSchema = z.custom<StdinSource>(
  (value) =>
    typeof value === 'string' ||
    value instanceof Uint8Array ||
    (typeof value === 'object' && value !== null && Symbol.asyncIterator in value),
  { message: 'must be a string, a Uint8Array or an async iterable of Uint8Array chunks' },
);

const callbackSchema = z.custom<(chunk: Uint8Array) => void>((value) => typeof value === 'function', {
  message: 'must be a function',
});

export const ExecOptionsSchema = z.strictObject({
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  stdin: stdinSchema.optional(),
  timeoutMs: z.number().positive().optional(),
  signal: abortSignalSchema.optional(),
  killGraceMs: z.number().nonnegative().optional(),
  maxOutputBytes: z.number().int().nonnegative().optional(),
  onStdout: callbackSchema.optional(),
  onStderr: callbackSchema.optional(),
});

export const ReadFileOptionsSchema = z.strictObject({
  maxBytes: z.number().int().nonnegative().optional(),
  signal: abortSignalSchema.optional(),
});

export const WriteFileOptionsSchema = z.strictObject({
  mode: z.number().int().min(0).max(0o7777).optional(),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  signal: abortSignalSchema.optional(),
});

export const CheckpointOptionsSchema = z.strictObject({
  label: z.string().optional(),
  signal: abortSignalSchema.optional(),
});

export const RollbackOptionsSchema = z.strictObject({
  signal: abortSignalSchema.optional(),
});
