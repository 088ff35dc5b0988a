/**
 * Ctrl-C and SIGTERM: the first one aborts what is running (the command's whole process tree is
 * killed through its AbortSignal, and the kept sandbox is left intact); a second one exits at once.
 */
import { AbortedError, parseSignal, signalNumber } from '@agentbox/core';

export interface Interrupts {
  readonly signal: AbortSignal;
  /** The exit status for the signal that arrived (130 for SIGINT, 143 for SIGTERM), if one did. */
  readonly exitCode: number | undefined;
  /** Set to take signals first: returning true means it handled the signal (nothing is aborted). */
  intercept: ((name: NodeJS.Signals) => boolean) | undefined;
  /** Abort what is running as if a signal had arrived, ending with `exitCode` (e.g. 141 after EPIPE). */
  stop(exitCode: number, reason: string): void;
  dispose(): void;
}

export function catchInterrupts(): Interrupts {
  const controller = new AbortController();
  let exitCode: number | undefined;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((name) => {
    const handler = () => {
      // The status a shell reports for a command killed by this signal (Linux numbering, whatever the host).
      const code = 128 + signalNumber(parseSignal(name));
      // A handler that takes the signal itself (the shell interrupting one command) keeps us running.
      if (interrupts.intercept?.(name)) return;
      if (exitCode !== undefined) process.exit(code);
      exitCode = code;
      controller.abort(new AbortedError(`interrupted by ${name}`));
    };
    process.on(name, handler);
    return () => process.off(name, handler);
  });
  const interrupts: Interrupts = {
    signal: controller.signal,
    get exitCode() {
      return exitCode;
    },
    intercept: undefined,
    stop(code, reason) {
      exitCode ??= code;
      controller.abort(new AbortedError(reason));
    },
    dispose: () => {
      for (const off of handlers) off();
    },
  };
  return interrupts;
}
