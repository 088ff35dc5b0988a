/** Flag parsing with node:util parseArgs: the flags every command shares and strict number/env parsing. */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { CommandName } from './usage.js';

export type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

type StrictConfig<O extends ParseArgsOptionsConfig> = {
  args: string[];
  options: O;
  allowPositionals: true;
  strict: true;
};

/** What `parseCommand` returns: typed `values` for the options `O`, and the positionals. */
export type ParsedCommand<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<StrictConfig<O>>>;

/** A mistake on the command line: reported with the command's usage, exit status 2. */
export class UsageError extends Error {
  readonly command: CommandName | undefined;
  constructor(message: string, command?: CommandName) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** Flags of every command that opens a sandbox. */
export const SANDBOX_OPTIONS = {
  // No default: without --backend, `--id` finds the backend `open` recorded (else local).
  backend: { type: 'string' },
  config: { type: 'string' },
  'config-file': { type: 'string' },
  policy: { type: 'string' },
  id: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const satisfies ParseArgsOptionsConfig;

/** Flags shaping one command run: `exec` and `shell`. */
export const RUN_OPTIONS = {
  'timeout-ms': { type: 'string' },
  cwd: { type: 'string' },
  env: { type: 'string', multiple: true },
} as const satisfies ParseArgsOptionsConfig;

/** True when the flags before any `--` ask for help. */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

export function parseCommand<const O extends ParseArgsOptionsConfig>(
  command: CommandName,
  args: string[],
  options: O,
): ParsedCommand<O> {
  try {
    return parseArgs<StrictConfig<O>>({
      args,
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    // parseArgs reports unknown flags, missing values and the like as ERR_PARSE_ARGS_* TypeErrors.
    throw new UsageError((error as Error).message, command);
  }
}

export function noPositionals(command: CommandName, positionals: readonly string[]): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, command);
}

export function requireId(command: CommandName, id: string | undefined): string {
  if (id === undefined || id === '') throw new UsageError('--id ID is required', command);
  return id;
}

/** A whole number of milliseconds (or other count) from a flag, or undefined when the flag is absent. */
export function intFlag(
  command: CommandName,
  name: string,
  value: string | undefined,
  min: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${name} must be a whole number >= ${min}, got "${value}"`, command);
  return n;
}

/** `--env K=V` pairs as an object; a pair without `=` or with an empty name is a usage error. */
export function envFlags(command: CommandName, pairs: readonly string[] | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env takes NAME=VALUE, got "${pair}"`, command);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}
