/** A way to stop a running agent from outside: a process signal, a file that appears, or an AbortSignal. */
import { existsSync } from 'node:fs';

export interface KillSwitchOptions {
  /** A file whose appearance stops the run at its next step, e.g. `/run/agentbox/STOP`. */
  file?: string;
  /** Process signals that stop the run at its next step, e.g. `['SIGUSR2']` (Node keeps SIGUSR1 for its inspector). */
  signals?: readonly NodeJS.Signals[];
  /** Aborting it stops the run at its next step (unlike `signal`, which aborts the run with an error). */
  abort?: AbortSignal;
}

/** Armed for one run: says whether and why it was thrown. */
export interface ArmedKillSwitch {
  /** Why the switch was thrown, or undefined while it was not. */
  check(): string | undefined;
  disarm(): void;
}

export function armKillSwitch(options: KillSwitchOptions | undefined): ArmedKillSwitch {
  let thrown: string | undefined;
  const listeners: [NodeJS.Signals, () => void][] = [];
  for (const name of options?.signals ?? []) {
    const listener = () => {
      thrown ??= `signal ${name}`;
    };
    process.on(name, listener);
    listeners.push([name, listener]);
  }
  return {
    check() {
      if (thrown) return thrown;
      if (options?.abort?.aborted) thrown = `kill switch aborted${reasonText(options.abort.reason)}`;
      else if (options?.file && existsSync(options.file)) thrown = `kill file ${options.file} appeared`;
      return thrown;
    },
    disarm() {
      for (const [name, listener] of listeners) process.off(name, listener);
    },
  };
}

function reasonText(reason: unknown): string {
  return reason instanceof Error && reason.message ? `: ${reason.message}` : '';
}
