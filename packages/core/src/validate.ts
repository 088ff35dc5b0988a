/**
 * Checking arguments with zod, written once: every issue becomes `path: message`, an unknown
 * key gets a "did you mean" from the keys the object knows, and the error's message
 * summarises the issues it lists.
 */
import type { z } from 'zod';
import { type ErrorContext, InvalidArgumentError } from './errors.js';
import { didYouMean } from './suggest.js';

/** Each issue as `path: message`; an unknown key as `path.key: unknown key (did you mean ...)`. */
export function formatZodIssues(
  error: z.ZodError,
  prefix = '',
  hints: ReadonlyMap<string, string> = new Map(),
): string[] {
  return error.issues.flatMap((issue) => {
    const at = [prefix, ...issue.path.map(String)];
    const path = (parts: string[]) => parts.filter(Boolean).join('.') || '(root)';
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((key) => `${path([...at, key])}: unknown key${hints.get(key) ?? ''}`);
    return [`${path(at)}: ${issue.message}`];
  });
}

const ISSUES_IN_MESSAGE = 8;

/** The issues on one line, at most eight of them; the error's `issues` has them all. */
export function summariseIssues(issues: readonly string[]): string {
  const shown = issues.slice(0, ISSUES_IN_MESSAGE).join('; ');
  const more = issues.length - ISSUES_IN_MESSAGE;
  return more > 0 ? `${shown}; and ${more} more` : shown;
}

export interface ArgumentCheck {
  /** What was checked, for the message: `invalid ${what}: ...`, e.g. `exec options`. */
  what: string;
  /** Path prefix of every issue, e.g. `config`. */
  prefix?: string;
  context?: ErrorContext;
}

/** `value` as `schema` parses it, or an InvalidArgumentError listing every issue. */
export function parseArgument<Schema extends z.ZodType>(
  schema: Schema,
  value: unknown,
  check: ArgumentCheck,
): z.output<Schema> {
  const hints = new Map<string, string>();
  const parsed = schema.safeParse(value, {
    error: (issue) => {
      if (issue.code !== 'unrecognized_keys') return undefined;
      // The object that refused the keys knows which ones it takes.
      const shape = (issue.inst as { shape?: Record<string, unknown> } | undefined)?.shape ?? {};
      for (const key of issue.keys) hints.set(key, didYouMean(key, Object.keys(shape)));
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    },
  });
  if (parsed.success) return parsed.data;
  const issues = formatZodIssues(parsed.error, check.prefix, hints);
  throw new InvalidArgumentError(`invalid ${check.what}: ${summariseIssues(issues)}`, {
    ...check.context,
    issues,
  });
}

/** One bad argument checked by hand: message `path problem`, issue `path: problem`. */
export function invalidArgument(
  path: string,
  problem: string,
  context: ErrorContext = {},
): InvalidArgumentError {
  return new InvalidArgumentError(`${path} ${problem}`, { ...context, issues: [`${path}: ${problem}`] });
}
