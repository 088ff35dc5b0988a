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

/** Print `error` on stderr: `agentbox: CODE: message`, or one JSON object with `--json`. */
export function reportError(error: unknown, json: boolean): void {
  if (error instanceof UsageError) {
    const where = error.command ? `agentbox ${error.command}` : 'agentbox';
    printError(`${where}: ${error.message}\n\n${error.command ? commandUsage(error.command) : MAIN_USAGE}`);
    return;
  }
  if (json) {
    printError(JSON.stringify({ error: errorJson(error) }));
    return;
  }
  if (error instanceof AgentboxError) printError(`agentbox: ${error.code}: ${error.message}`);
  else
    printError(
      `agentbox: INTERNAL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
}

export function errorJson(error: unknown): Record<string, unknown> {
  if (!(error instanceof AgentboxError))
    return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
  const out: Record<string, unknown> = {
    code: error.code,
    message: error.message,
    retryable: error.retryable,
    backend: error.backend,
    operation: error.operation,
    sandboxId: error.sandboxId,
  };
  const extra = error as AgentboxError & {
    issues?: readonly string[];
    controls?: Record<string, string>;
    timeoutMs?: number;
    partial?: { stdout: string; stderr: string };
  };
  if (extra.issues?.length) out.issues = extra.issues;
  if (extra.controls) out.controls = extra.controls;
  if (extra.timeoutMs !== undefined) out.timeoutMs = extra.timeoutMs;
  if (extra.partial) out.partial = { stdout: extra.partial.stdout, stderr: extra.partial.stderr };
  return out;
}
