/**
 * Stopping every process of an instance while a checkpoint reads, or a rollback writes, the
 * tree on the host: the instance has its own PID namespace (--containall), so its processes
 * are those whose /proc/<pid>/ns/pid is its init's.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { SandboxUnavailableError } from '@agentbox/core';
import {
  continueProcesses,
  type ErrorContext,
  isStopped,
  namespaceMembers,
  pidNamespaceOf,
  processStat,
  stopProcesses,
} from '@agentbox/core/backend';

/** How long a freeze waits for the entering processes outside the instance to stop themselves. */
const ENTERERS_STOP_MS = 2_000;

/**
 * Run `fn` with the instance's processes stopped (SIGSTOP), continued afterwards.
 *
 * The processes that entered the instance from the host (nsenter, the CLI's starter) mirror their
 * child: when it stops they stop themselves, and only continue it when they are continued. A
 * stopped one never reaps its command, so they are continued too, after the instance's own.
 */
export async function frozen<T>(
  instance: { pid: number; pidNamespace: string },
  context: ErrorContext,
  fn: () => Promise<T>,
): Promise<T> {
  if (pidNamespaceOf(instance.pid) !== instance.pidNamespace)
    throw new SandboxUnavailableError("the sandbox's instance is gone (its init no longer runs)", context);
  const stopped = await stopProcesses(() => namespaceMembers(instance.pid, instance.pidNamespace), context);
  const enterers = new Set<number>();
  try {
    for (const pid of stopped) {
      const parent = processStat(pid)?.ppid;
      if (parent && parent !== instance.pid && pidNamespaceOf(parent) !== instance.pidNamespace)
        enterers.add(parent);
    }
    // Wait until they have stopped themselves: one continued before it stops would stay stopped.
    const until = Date.now() + ENTERERS_STOP_MS;
    while (![...enterers].every(isStopped) && Date.now() < until) await delay(5);
    return await fn();
  } finally {
    continueProcesses(stopped);
    continueProcesses(enterers);
    // One that stopped itself late (a loaded host) is continued on a second look.
    for (let round = 0; round < 10 && enterers.size > 0; round++) {
      await delay(20);
      continueProcesses([...enterers].filter((pid) => processStat(pid)?.state === 'T'));
    }
  }
}
