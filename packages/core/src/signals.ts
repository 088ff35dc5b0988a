/**
 * The Linux signal table (x86_64 and arm64 share these numbers). Sandboxes run Linux whatever
 * the host is, so names and numbers come from here and never from the host's `os.constants`
 * (macOS numbers SIGUSR1, SIGCHLD, SIGSTOP... differently).
 */
import { type ErrorContext, InvalidArgumentError, shownValue } from './errors.js';

/** Standard signals by number: entry i is signal i + 1. */
const TABLE = [
  'SIGHUP',
  'SIGINT',
  'SIGQUIT',
  'SIGILL',
  'SIGTRAP',
  'SIGABRT',
  'SIGBUS',
  'SIGFPE',
  'SIGKILL',
  'SIGUSR1',
  'SIGSEGV',
  'SIGUSR2',
  'SIGPIPE',
  'SIGALRM',
  'SIGTERM',
  'SIGSTKFLT',
  'SIGCHLD',
  'SIGCONT',
  'SIGSTOP',
  'SIGTSTP',
  'SIGTTIN',
  'SIGTTOU',
  'SIGURG',
  'SIGXCPU',
  'SIGXFSZ',
  'SIGVTALRM',
  'SIGPROF',
  'SIGWINCH',
  'SIGIO',
  'SIGPWR',
  'SIGSYS',
] as const;

/** A Linux signal name, as `kill` and `ExecResult.signal` spell it. */
export type SignalName = (typeof TABLE)[number];

/** What `kill` accepts: a name with or without `SIG` in any case (`TERM`, `sigterm`), or a number. */
export type SignalInput = SignalName | number | (string & {});

/** Every standard Linux signal name, in number order (index + 1 is the number). */
export const LINUX_SIGNALS: readonly SignalName[] = TABLE;

/** Other names Linux gives the same signals. */
const ALIASES: Readonly<Record<string, SignalName>> = {
  SIGIOT: 'SIGABRT',
  SIGPOLL: 'SIGIO',
  SIGCLD: 'SIGCHLD',
};

const BY_NAME: ReadonlyMap<string, SignalName> = new Map<string, SignalName>([
  ...TABLE.map((name) => [name, name] as const),
  ...Object.entries(ALIASES),
]);

/** The number of a Linux signal name (aliases included); 0 for a name the table does not know. */
export function signalNumber(name: string): number {
  const canonical = BY_NAME.get(name);
  return canonical === undefined ? 0 : TABLE.indexOf(canonical) + 1;
}

/** The name of Linux signal `num`, or null outside 1..31. */
export function signalName(num: number): SignalName | null {
  return Number.isInteger(num) && num >= 1 && num <= TABLE.length ? TABLE[num - 1]! : null;
}

/** Whether `name` is a canonical Linux signal name (`SIGTERM`, not `TERM` or `sigterm`). */
export function isSignalName(name: unknown): name is SignalName {
  return typeof name === 'string' && (TABLE as readonly string[]).includes(name);
}

/**
 * The one gate a signal passes before it is sent anywhere: `SIGTERM`, `TERM`, `sigterm`, `15`
 * and `'15'` all give `'SIGTERM'`. Anything else (signal 0, real-time signals, a name with
 * spaces or shell text) is an InvalidArgumentError, so no unchecked string reaches a shell.
 */
export function parseSignal(input: unknown, context: ErrorContext = {}): SignalName {
  let found: SignalName | null | undefined;
  if (typeof input === 'number') found = signalName(input);
  else if (typeof input === 'string') {
    if (/^[0-9]{1,2}$/.test(input)) found = signalName(Number(input));
    else if (/^[A-Za-z0-9]{1,12}$/.test(input)) {
      const upper = input.toUpperCase();
      found = BY_NAME.get(upper.startsWith('SIG') ? upper : `SIG${upper}`);
    }
  }
  if (!found) {
    const shown = typeof input === 'string' ? JSON.stringify(input.slice(0, 40)) : shownValue(input);
    throw new InvalidArgumentError(
      `unknown signal ${shown}: give a Linux signal name (SIGTERM, TERM) or a number from 1 to ${TABLE.length}`,
      context,
    );
  }
  return found;
}
