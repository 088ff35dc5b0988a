/**
 * Telling an out-of-memory kill from any other SIGKILL: the memory cgroup counts the processes
 * its limit killed (`oom_kill` in cgroup v1's memory.oom_control, v2's memory.events). A
 * backend reads that count when a command dies of SIGKILL; if it went up since the last
 * reading, the command is reported as OOM-killed.
 */
import { readFile } from 'node:fs/promises';

/** The script that prints a cgroup's OOM-kill count from inside a container (v1, then v2). */
export const OOM_KILLS_SCRIPT =
  'cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null || cat /sys/fs/cgroup/memory.events';

/** The `oom_kill N` count in a memory.oom_control or memory.events text; undefined when absent. */
export function parseOomKills(text: string): number | undefined {
  const m = /^oom_kill (\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * The directory of the memory cgroup a host process is in, from /proc/PID/cgroup: the v1
 * memory hierarchy where it is mounted, else the v2 unified one.
 */
export async function memoryCgroupOf(pid: number): Promise<string | undefined> {
  const lines = (await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '')).split('\n');
  const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  if (v1) return `/sys/fs/cgroup/memory${v1.slice(v1.indexOf(':', v1.indexOf(':') + 1) + 1)}`;
  const v2 = lines.find((l) => l.startsWith('0::'));
  return v2 === undefined ? undefined : `/sys/fs/cgroup${v2.slice(3)}`.replace(/\/$/, '');
}

/** The OOM-kill count of a memory cgroup directory on this host; undefined when it cannot be read. */
export async function cgroupOomKills(dir: string): Promise<number | undefined> {
  for (const file of ['memory.oom_control', 'memory.events']) {
    const text = await readFile(`${dir}/${file}`, 'utf8').catch(() => undefined);
    if (text !== undefined) return parseOomKills(text);
  }
  return undefined;
}

/**
 * Remembers the last count seen: `seen()` is true when the count has gone up since the last
 * call. The first reading compares with `initial` (0 for a cgroup made for this sandbox). Two
 * SIGKILLed commands ending at once may see the one OOM kill credited to the first to ask.
 */
export class OomKillCounter {
  #last: number;
  #chain: Promise<unknown> = Promise.resolve();
  readonly #read: () => Promise<number | undefined>;

  constructor(read: () => Promise<number | undefined>, initial = 0) {
    this.#read = read;
    this.#last = initial;
  }

  seen(): Promise<boolean> {
    const next = this.#chain.then(async () => {
      const count = await this.#read();
      if (count === undefined || count <= this.#last) return false;
      this.#last = count;
      return true;
    });
    this.#chain = next.catch(() => {});
    return next;
  }
}
