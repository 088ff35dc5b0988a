/**
 * Signalling a session command from the host: its process group in the instance's PID
 * namespace, and every other process of the instance still holding the command's output (one
 * that left the group with its own `setsid` but writes on). The session's own shells hold that
 * output too and must live on: they are the instance's processes whose parent is outside it
 * (each entered through `exec`), and their children outside the command's group (the shell a
 * session keeps waiting for its next command).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { pidNamespaceOf as pidNamespace } from '@agentbox/core/backend';

interface Member {
  /** Process group id as the instance numbers it. */
  pgid: number;
  /** The same group as this process (the library's PID namespace) numbers it. */
  hostPgid: number;
  ppid: number;
}

function members(instance: { pid: number; pidNamespace: string }): Map<number, Member> {
  const found = new Map<number, Member>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pidNamespace(pid) !== instance.pidNamespace) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'latin1');
      const pgids = /^NSpgid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
      const ppid = Number(/^PPid:\s+(\d+)$/m.exec(status)?.[1]);
      if (pgids) found.set(pid, { pgid: Number(pgids.at(-1)), hostPgid: Number(pgids[0]), ppid });
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

function outputOf(pid: number): string[] {
  const links: string[] = [];
  for (const fd of [1, 2]) {
    try {
      links.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // Closed, or the process is gone.
    }
  }
  return links;
}

function holds(pid: number, targets: ReadonlySet<string>): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  return fds.some((fd) => {
    try {
      return targets.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      return false;
    }
  });
}

function signal(pid: number, name: string): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone meanwhile.
  }
}

function signalGroup(hostPgid: number, name: string): boolean {
  try {
    process.kill(-hostPgid, name);
    return true;
  } catch {
    return false;
  }
}

/** Signal group `pgid` of the instance and whoever else of it holds that group's output. */
export function signalGroupAndHolders(
  instance: { pid: number; pidNamespace: string },
  pgid: number,
  name: string,
): void {
  const all = members(instance);
  const group = [...all].filter(([, m]) => m.pgid === pgid).map(([pid]) => pid);
  // Node's pipes are socket pairs; a file the group writes to is not its output stream.
  const pipes = new Set(group.flatMap(outputOf).filter((link) => /^(pipe|socket):/.test(link)));
  // The kernel signals a whole group at once, so a member forking meanwhile (a fork bomb does
  // nothing else) cannot leave a child out; one by one is the fallback.
  const hostPgid = group.length > 0 ? all.get(group[0]!)!.hostPgid : 0;
  if (!(hostPgid > 1 && signalGroup(hostPgid, name))) for (const pid of group) signal(pid, name);
  if (pipes.size === 0) return;
  const sessionShells = new Set(
    [...all].filter(([pid, m]) => pid !== instance.pid && !all.has(m.ppid)).map(([pid]) => pid),
  );
  for (const [pid, m] of all) {
    if (pid === instance.pid || m.pgid === pgid || sessionShells.has(pid)) continue;
    if (sessionShells.has(m.ppid)) continue;
    if (holds(pid, pipes)) signal(pid, name);
  }
}
