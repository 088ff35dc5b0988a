/**
 * Stopping every process of an instance while a checkpoint reads, or a rollback writes, the
 * tree on the host: the instance has its own PID namespace (--containall), so its processes
 * are those whose /proc/<pid>/ns/pid is its init's.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { SandboxUnavailableError } from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';

const FREEZE_TIMEOUT_MS = 10_000;

export function pidNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

function state(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return undefined;
  }
}

/** Host pids of the instance's processes but its init (a reaper that touches no file). */
function members(init: number, namespace: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid !== init && pidNamespace(pid) === namespace) pids.push(pid);
  }
  return pids;
}

/**
 * Run `fn` with the instance's processes stopped (SIGSTOP), continued afterwards. Passes repeat
 * until one finds no new process (one forked before its parent stopped), and each waits until
 * what it signalled has really stopped.
 */
export async function frozen<T>(
  instance: { pid: number; pidNamespace: string },
  context: ErrorContext,
  fn: () => Promise<T>,
): Promise<T> {
  if (pidNamespace(instance.pid) !== instance.pidNamespace)
    throw new SandboxUnavailableError("the sandbox's instance is gone (its init no longer runs)", context);
  const stopped = new Set<number>();
  try {
    const deadline = Date.now() + FREEZE_TIMEOUT_MS;
    for (;;) {
      const fresh = members(instance.pid, instance.pidNamespace).filter((pid) => !stopped.has(pid));
      if (fresh.length === 0) break;
      for (const pid of fresh) {
        try {
          process.kill(pid, 'SIGSTOP');
        } catch {
          // Exited meanwhile.
        }
        stopped.add(pid);
      }
      while (fresh.some((pid) => !['T', 't', 'Z', 'X', undefined].includes(state(pid)))) {
        if (Date.now() > deadline)
          throw new SandboxUnavailableError(
            `the instance's processes did not stop within ${FREEZE_TIMEOUT_MS} ms`,
            context,
          );
        await delay(5);
      }
    }
    return await fn();
  } finally {
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Gone meanwhile.
      }
    }
  }
}
