/** How a failure ends the CLI: a message on stderr and an exit status callers can branch on. */
import { AgentboxError } from '@agentbox/core';
import { UsageError } from './args.js';
import type { Interrupts } from './interrupt.js';
import { printError } from './output.js';
import { commandUsage, MAIN_USAGE } from './usage.js';

/** The CLI's own convention (as timeout(1) has it): a command killed by its --timeout-ms exits 124. */
export const EXIT_TIMEOUT = 124;
export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

export function exitCodeFor(error: unknown, interrupts?: Interrupts): number {
  if (error instanceof UsageError) return EXIT_USAGE;
  if (error instanceof AgentboxError) {
    if (error.code === 'TIMEOUT') return EXIT_TIMEOUT;
    if (error.code === 'INVALID_ARGUMENT') return EXIT_USAGE;
    if (error.code === 'ABORTED' && interrupts?.exitCode !== undefined) return interrupts.exitCode;
  }
  return EXIT_FAILURE;
}

/** `AGENTBOX_DEBUG=1` (or any value but 0/false/empty) adds stacks and causes to error reports. */
export function debugRequested(env: Readonly<Record<string, string | undefined>>): boolean {
  const value = env.AGENTBOX_DEBUG?.trim().toLowerCase();
  return value !== undefined && value !== '' && value !== '0' && value !== 'false';
}

/**
 * Print `error` on stderr: `agentbox: CODE: message` (no stack: the message says what went wrong
 * and what to do), or one JSON object with `--json`. `debug` adds the stack and the causes.
 */
export function reportError(error: unknown, json: boolean, debug = false): void {
  if (error instanceof UsageError) {
    const where = error.command ? `agentbox ${error.command}` : 'agentbox';
    printError(`${where}: ${error.message}\n\n${error.command ? commandUsage(error.command) : MAIN_USAGE}`);
    return;
  }
  if (json) {
    printError(JSON.stringify({ error: errorJson(error, debug) }));
    return;
  }
  const code = error instanceof AgentboxError ? error.code : 'INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  if (!debug) {
    const hint = error instanceof AgentboxError ? '' : ' (AGENTBOX_DEBUG=1 shows where it came from)';
    printError(`agentbox: ${code}: ${message}${hint}`);
    return;
  }
  printError(`agentbox: ${code}: ${message}\n${errorTrace(error)}`);
}

/** The stack of an error and of each cause under it, for AGENTBOX_DEBUG. */
function errorTrace(error: unknown): string {
  const lines: string[] = [];
  const seen = new Set<unknown>();
  for (let e = error; e !== undefined && !seen.has(e); e = (e as { cause?: unknown } | null)?.cause) {
    seen.add(e);
    const text = e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : JSON.stringify(e);
    lines.push(lines.length === 0 ? text : `caused by: ${text}`);
    if (!(e instanceof Error)) break;
  }
  return lines.join('\n');
}

/** The error as JSON: a typed error's own `toJSON` (code, message, context, cause chain). */
export function errorJson(error: unknown, debug = false): Record<string, unknown> {
  const json: Record<string, unknown> =
    error instanceof AgentboxError
      ? error.toJSON()
      : {
          name: error instanceof Error ? error.name : typeof error,
          code: 'INTERNAL',
          message: error instanceof Error ? error.message : String(error),
        };
  if (debug && error instanceof Error) json.stack = error.stack;
  return json;
}
