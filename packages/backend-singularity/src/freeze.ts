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

/** The state letter (`T` stopped) and parent pid of a process, or undefined when it is gone. */
function stat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}
const state = (pid: number) => stat(pid)?.state;
const isStopped = (pid: number) => ['T', 't', 'Z', 'X', undefined].includes(state(pid));

/** How long a freeze waits for the entering processes outside the instance to stop themselves. */
const ENTERERS_STOP_MS = 2_000;

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
  if (pidNamespace(instance.pid) !== instance.pidNamespace)
    throw new SandboxUnavailableError("the sandbox's instance is gone (its init no longer runs)", context);
  const stopped = new Set<number>();
  const enterers = new Set<number>();
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
      while (!fresh.every(isStopped)) {
        if (Date.now() > deadline)
          throw new SandboxUnavailableError(
            `the instance's processes did not stop within ${FREEZE_TIMEOUT_MS} ms`,
            context,
          );
        await delay(5);
      }
    }
    for (const pid of stopped) {
      const parent = stat(pid)?.ppid;
      if (parent && parent !== instance.pid && pidNamespace(parent) !== instance.pidNamespace)
        enterers.add(parent);
    }
    // Wait until they have stopped themselves: one continued before it stops would stay stopped.
    const until = Date.now() + ENTERERS_STOP_MS;
    while (![...enterers].every(isStopped) && Date.now() < until) await delay(5);
    return await fn();
  } finally {
    const resume = (pids: Iterable<number>) => {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // Gone meanwhile.
        }
      }
    };
    resume(stopped);
    resume(enterers);
    // One that stopped itself late (a loaded host) is continued on a second look.
    for (let round = 0; round < 10 && enterers.size > 0; round++) {
      await delay(20);
      resume([...enterers].filter((pid) => state(pid) === 'T'));
    }
  }
}
