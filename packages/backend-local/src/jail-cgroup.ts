/**
 * Resource limits for a bubblewrap jail: bubblewrap sets none, so the sandbox gets a cgroup of
 * its own (pids, memory, CPU), made under this process's cgroup where this user may write there
 * (root, or a delegated subtree), on cgroup v2 or the v1 controllers. Every process entering the
 * jail (commands, file scripts) joins it before it enters; the jail's init joins it at start.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxUnavailableError } from '@agentbox/core';
import { cgroupOomKills, type ErrorContext } from '@agentbox/core/backend';

export interface JailLimits {
  pids?: number | undefined;
  memoryMiB?: number | undefined;
  cpus?: number | undefined;
}

type Controller = 'pids' | 'memory' | 'cpu';

/** Where each controller's cgroup for a sandbox would go, or why limits cannot be set here. */
export interface CgroupLayout {
  version: 1 | 2;
  /** The parent directory for each controller (one shared directory on v2). */
  parents: Record<Controller, string>;
}

/** Each sandbox's cgroup is `<prefix><sandbox id>`, under this process's own cgroup. */
export const CGROUP_NAME_PREFIX = 'agentbox-local-';

/** This process's cgroup layout, or the reason no sandbox cgroup can be made under it. */
export function cgroupLayout(): CgroupLayout | string {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return 'no /proc/self/cgroup';
  }
  const pathOf = (match: (controllers: string[]) => boolean) => {
    for (const line of lines) {
      const [, list = '', path] = line.split(':');
      if (path !== undefined && match(list.split(','))) return path;
    }
    return undefined;
  };
  let parents: Record<Controller, string>;
  let version: 1 | 2;
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    version = 2;
    const path = pathOf((c) => c.length === 1 && c[0] === '');
    if (path === undefined) return 'this process is in no cgroup v2 group';
    const dir = join('/sys/fs/cgroup', path);
    const enabled = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
    const missing = ['pids', 'memory', 'cpu'].filter((c) => !enabled.includes(c));
    if (missing.length) return `cgroup v2 controllers not delegated to ${dir}: ${missing.join(', ')}`;
    parents = { pids: dir, memory: dir, cpu: dir };
  } else {
    version = 1;
    const found: Partial<Record<Controller, string>> = {};
    for (const c of ['pids', 'memory', 'cpu'] as const) {
      const path = pathOf((list) => list.includes(c));
      const mount = `/sys/fs/cgroup/${c}`;
      if (path === undefined || !existsSync(mount)) return `the cgroup v1 ${c} controller is not mounted`;
      found[c] = join(mount, path);
    }
    parents = found as Record<Controller, string>;
  }
  for (const dir of new Set(Object.values(parents))) {
    try {
      accessSync(dir, constants.W_OK);
    } catch {
      return `this user (uid ${process.getuid?.()}) may not create cgroups under ${dir}`;
    }
  }
  return { version, parents };
}

/** The cgroup directories of one sandbox (several on v1, one on v2). */
export class JailCgroup {
  readonly #dirs: string[];
  readonly #memoryDir: string;

  private constructor(dirs: string[], memoryDir: string) {
    this.#dirs = dirs;
    this.#memoryDir = memoryDir;
  }

  /** Make the sandbox's cgroup with the limits asked for. */
  static async create(
    layout: CgroupLayout,
    sandboxId: string,
    limits: JailLimits,
    context: ErrorContext,
  ): Promise<JailCgroup> {
    const name = `${CGROUP_NAME_PREFIX}${sandboxId}`;
    const dir = (c: Controller) => join(layout.parents[c], name);
    const dirs = [...new Set((['pids', 'memory', 'cpu'] as const).map(dir))];
    const cgroup = new JailCgroup(dirs, dir('memory'));
    try {
      for (const d of dirs) {
        // One a crashed process left under this id (re-attach): empty once its jail died with it.
        await rmdir(d).catch(() => {});
        await mkdir(d);
      }
      const memory = limits.memoryMiB === undefined ? undefined : String(limits.memoryMiB * 1024 * 1024);
      if (layout.version === 2) {
        const d = dir('pids');
        if (limits.pids !== undefined) await writeFile(join(d, 'pids.max'), String(limits.pids));
        if (memory !== undefined) {
          await writeFile(join(d, 'memory.max'), memory);
          await writeFile(join(d, 'memory.swap.max'), '0').catch(() => {});
        }
        if (limits.cpus !== undefined)
          await writeFile(join(d, 'cpu.max'), `${Math.round(limits.cpus * 100_000)} 100000`);
      } else {
        if (limits.pids !== undefined) await writeFile(join(dir('pids'), 'pids.max'), String(limits.pids));
        if (memory !== undefined) {
          await writeFile(join(dir('memory'), 'memory.limit_in_bytes'), memory);
          // No swap beyond the limit, where the kernel accounts swap.
          await writeFile(join(dir('memory'), 'memory.memsw.limit_in_bytes'), memory).catch(() => {});
        }
        if (limits.cpus !== undefined) {
          await writeFile(join(dir('cpu'), 'cpu.cfs_period_us'), '100000');
          await writeFile(join(dir('cpu'), 'cpu.cfs_quota_us'), String(Math.round(limits.cpus * 100_000)));
        }
      }
    } catch (error) {
      await cgroup.remove();
      throw new SandboxUnavailableError(
        `cannot make the sandbox's cgroup for its limits: ${(error as Error).message}`,
        { ...context, cause: error },
      );
    }
    return cgroup;
  }

  /** The `cgroup.procs` files a process writes its pid to, to join. */
  get procsFiles(): string[] {
    return this.#dirs.map((d) => join(d, 'cgroup.procs'));
  }

  /** Move a running process (the jail's init) into the cgroup. */
  async join(pid: number): Promise<void> {
    for (const file of this.procsFiles) await writeFile(file, String(pid));
  }

  /** How many processes the memory limit has killed. */
  oomKills(): Promise<number | undefined> {
    return cgroupOomKills(this.#memoryDir);
  }

  /**
   * Remove the directories, once their processes are gone (the kernel refuses while any is
   * left, and a killed process takes a moment to leave).
   */
  async remove(): Promise<void> {
    for (const d of this.#dirs) {
      for (let attempt = 0; existsSync(d); attempt++) {
        try {
          await rmdir(d);
        } catch (error) {
          if (attempt >= 50) throw error;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    }
  }
}

/** A host shell prefix that joins the cgroups (writing its pid to each file) and execs the rest. */
export function joinCgroupArgv(procsFiles: readonly string[]): string[] {
  if (procsFiles.length === 0) return [];
  return [
    '/bin/sh',
    '-c',
    'while [ "$1" != -- ]; do echo $$ > "$1" || { echo "agentbox: cannot join the sandbox cgroup $1" >&2; exit 125; }; shift; done; shift; exec "$@"',
    'agentbox-cgroup',
    ...procsFiles,
    '--',
  ];
}
