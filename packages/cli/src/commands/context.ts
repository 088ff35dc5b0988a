/** What every command gets from `main`. */
import type { Interrupts } from '../interrupt.js';

export interface CommandContext {
  /** Ctrl-C / SIGTERM, as an AbortSignal to hand to every sandbox call. */
  interrupts: Interrupts;
  /** The environment the CLI was started with (read once, at the entry point). */
  env: Readonly<Record<string, string | undefined>>;
}

/** A command: parses its own flags, returns the exit status (errors are thrown to `main`). */
export type Command = (args: string[], ctx: CommandContext) => Promise<number>;
