/**
 * Stopping the processes of a sandbox that lives in its own PID namespace on this host (a
 * bubblewrap jail, an Apptainer instance) while a checkpoint reads, or a rollback writes, its
 * tree from outside. Linux only: everything is read from /proc.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { type ErrorContext, SandboxUnavailableError } from './errors.js';

/** `pid:[inode]` of a process's PID namespace, or undefined when it is gone. */
export function pidNamespaceOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/** The state letter (`T` stopped, `Z` zombie) and parent of a process, or undefined when it is gone. */
export function processStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** Stopped, dead or gone: it will not touch a file until continued. */
export function isStopped(pid: number): boolean {
  return ['T', 't', 'Z', 'X', undefined].includes(processStat(pid)?.state);
}

/** The program a process runs (its `exe` link), or undefined when it is gone or unreadable. */
function programOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

/**
 * Whether a process that has not stopped is waiting in vfork for a child that is stopped before
 * its exec (dash runs commands through vfork): it cannot run until that child does, and it
 * never reaches a stop while the child is held, so it counts as stopped. Such a child still runs
 * its parent's program, and the wait lasts: a process asleep in a disk write for a moment is
 * waited for as before.
 */
function heldByVforkChild(
  pid: number,
  stopped: ReadonlySet<number>,
  asleepSince: Map<number, number>,
): boolean {
  if (processStat(pid)?.state !== 'D') {
    asleepSince.delete(pid);
    return false;
  }
  const since = asleepSince.get(pid) ?? Date.now();
  asleepSince.set(pid, since);
  if (Date.now() - since < VFORK_WAIT_MS) return false;
  const program = programOf(pid);
  if (program === undefined) return false;
  for (const child of stopped) {
    const stat = processStat(child);
    if (stat?.ppid === pid && (stat.state === 'T' || stat.state === 't') && programOf(child) === program)
      return true;
  }
  return false;
}

/** Host pids of every process in the PID namespace `namespace` but `init` (its reaper). */
export function namespaceMembers(init: number, namespace: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid !== init && pidNamespaceOf(pid) === namespace) pids.push(pid);
  }
  return pids;
}

/** SIGCONT to each; one gone meanwhile is skipped. */
export function continueProcesses(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Gone meanwhile.
    }
  }
}

const FREEZE_TIMEOUT_MS = 10_000;
/** How long a process must sit in uninterruptible sleep over a stopped child to count as held by it. */
const VFORK_WAIT_MS = 200;

/**
 * SIGSTOP every process `members()` lists and wait until each has really stopped (a signal
 * acts when the process next runs). Passes repeat until one finds nothing new: a process forked
 * before its parent stopped shows up in the next. Returns the pids stopped, for
 * `continueProcesses`; on timeout continues them and throws SandboxUnavailableError.
 */
export async function stopProcesses(
  members: () => readonly number[],
  context: ErrorContext,
  timeoutMs = FREEZE_TIMEOUT_MS,
): Promise<Set<number>> {
  const stopped = new Set<number>();
  const asleepSince = new Map<number, number>();
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const fresh = members().filter((pid) => !stopped.has(pid));
      if (fresh.length === 0) return stopped;
      for (const pid of fresh) {
        try {
          process.kill(pid, 'SIGSTOP');
        } catch {
          // Exited meanwhile.
        }
        stopped.add(pid);
      }
      while (!fresh.every((pid) => isStopped(pid) || heldByVforkChild(pid, stopped, asleepSince))) {
        if (Date.now() > deadline)
          throw new SandboxUnavailableError(
            `the sandbox's processes did not stop within ${timeoutMs} ms`,
            context,
          );
        await delay(5);
      }
    }
  } catch (error) {
    continueProcesses(stopped);
    throw error;
  }
}
