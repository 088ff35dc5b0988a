/**
 * Find and remove what crashed or forgotten sandboxes left on an SSH host: sandbox directories
 * under the configured root (`<root>/<id>/workspace`, with the `sandbox.json` this backend
 * wrote naming that id: nothing else there is touched) and the processes still working inside
 * them. A dry run only lists.
 *
 * A process belongs to a sandbox when its working directory is inside that sandbox's directory
 * (every command starts in the workspace); one that changed to a directory elsewhere is not
 * found. Only the login user's own processes are visible, so only they are touched. A sandbox
 * directory another user owns (a root shared between logins) is left alone unless `all` is set
 * or it is named by id.
 */
import {
  parseBackendConfig,
  SandboxIdSchema,
  SandboxUnavailableError,
  type SweepOptions,
  type SweepReport,
  type SweptSandbox,
} from '@agentbox/core';
import { type SshConfig, SshConfigSchema, type SshResolvedConfig } from './config.js';
import { SshConnection } from './connection.js';
import { knownHostsName } from './known-hosts.js';
import { quoteAll } from './shell.js';

export interface SshSweepOptions {
  /** How to reach the host and where its sandboxes live: the backend's own config. */
  config: SshConfig;
  /** List only; remove nothing. */
  dryRun?: boolean;
  /** Only sandboxes created at least this long ago (by `sandbox.json`; one without a readable time is kept). */
  olderThanMs?: number;
  /** Only this sandbox. */
  sandboxId?: string;
  /** Only sandboxes that carry these labels (the policy labels they were opened with). */
  labels?: Readonly<Record<string, string>>;
  /** Also sandbox directories other users own. Default false. */
  all?: boolean;
  /** The current time, for tests (default Date.now()). */
  now?: number;
}

export interface SweptSshSandbox {
  id: string;
  /** Absolute path of the sandbox directory on the host. */
  path: string;
  /** ISO 8601, from `sandbox.json`; undefined when it has none. */
  createdAt: string | undefined;
  labels: Record<string, string>;
  /** Pids of the processes found working inside it (killed unless a dry run). */
  processes: number[];
  /** False in a dry run, or when removing it failed (see `error`). */
  removed: boolean;
  error?: string;
}

/**
 * `cwd /proc/PID`: that process's working directory, found by entering it in a subshell (a
 * builtin `cd`, no program started per process); fails for another user's process.
 */
const CWD = `cwd() { (cd -P -- "$1/cwd" 2>/dev/null && pwd); }`;

/** Every sandbox directory under the root, then every process whose working directory is below it. */
const LIST = `${CWD}
root=$1
case "$root" in "~") root=$HOME ;; "~/"*) root="$HOME/\${root#"~/"}" ;; esac
[ -d "$root" ] || exit 0
root=$(cd -P -- "$root" && pwd) || exit 3
cd -- "$root" || exit 3
for d in */; do
  d=\${d%/}
  [ -d "$d/workspace" ] && [ ! -L "$d" ] || continue
  meta=$(head -c 65536 "$d/sandbox.json" 2>/dev/null | tr '\\t\\n' '  ')
  o=other; [ -O "$d" ] && o=own
  printf 'S\\t%s\\t%s\\t%s\\t%s\\n' "$d" "$root/$d" "$meta" "$o"
done
for p in /proc/[0-9]*; do
  c=$(cwd "$p") || continue
  case "$c" in "$root"/*) printf 'P\\t%s\\t%s\\n' "\${p#/proc/}" "$c" ;; esac
done`;

/** Kill what still works inside the directory (twice: a dying parent may have forked), then remove it. */
const REMOVE = `${CWD}
dir=$1
for pass in 1 2; do
  for p in /proc/[0-9]*; do
    c=$(cwd "$p") || continue
    case "$c" in "$dir"|"$dir"/*) kill -KILL "\${p#/proc/}" 2>/dev/null ;; esac
  done
done
chmod -R u+rwX "$dir" 2>/dev/null
rm -rf -- "$dir"
[ ! -e "$dir" ]`;

export async function sweepSsh(options: SshSweepOptions): Promise<SweptSshSandbox[]> {
  const context = { backend: 'ssh', operation: 'sweep' };
  const config = parseBackendConfig('ssh', SshConfigSchema, options.config, 'sweep');
  const now = options.now ?? Date.now();
  const conn = new SshConnection(config, context);
  try {
    const listed = await conn.run(`sh -c ${quoteAll([LIST, 'sh', config.root])}`, { context });
    if (listed.code !== 0)
      throw new SandboxUnavailableError(
        `cannot list ${config.root} on the host: ${listed.stderr.toString('utf8').trim() || `exit ${listed.code}`}`,
        context,
      );
    const sandboxes: SweptSshSandbox[] = [];
    const processes: { pid: number; cwd: string }[] = [];
    for (const line of listed.stdout.toString('utf8').split('\n')) {
      const [kind, a, b, meta, owner] = line.split('\t');
      if (kind === 'P' && a && b) processes.push({ pid: Number(a), cwd: b });
      if (kind !== 'S' || !a || !b || !SandboxIdSchema.safeParse(a).success) continue;
      // Another user's directory under a shared root: only when asked for all, or by its id.
      if (owner !== 'own' && !options.all && options.sandboxId === undefined) continue;
      // Only what this backend created: a `sandbox.json` naming the directory's own id.
      const found = readMeta(meta);
      if (found?.id !== a) continue;
      sandboxes.push({
        id: a,
        path: b,
        createdAt: found.createdAt,
        labels: found.labels,
        processes: [],
        removed: false,
      });
    }
    const chosen = sandboxes.filter((s) => {
      if (options.sandboxId !== undefined && s.id !== options.sandboxId) return false;
      for (const [key, value] of Object.entries(options.labels ?? {}))
        if (s.labels[key] !== value) return false;
      if (options.olderThanMs !== undefined) {
        const created = s.createdAt === undefined ? Number.NaN : Date.parse(s.createdAt);
        // A sweep never guesses an age: no readable creation time, not old enough.
        if (!(now - created >= options.olderThanMs)) return false;
      }
      return true;
    });
    for (const s of chosen) {
      s.processes = processes
        .filter((p) => p.cwd === s.path || p.cwd.startsWith(`${s.path}/`))
        .map((p) => p.pid);
      if (options.dryRun) continue;
      const result = await conn.run(`sh -c ${quoteAll([REMOVE, 'sh', s.path])}`, { context });
      if (result.code === 0) s.removed = true;
      else s.error = result.stderr.toString('utf8').trim() || `exit ${result.code}`;
    }
    return chosen;
  } finally {
    conn.close();
  }
}

function readMeta(
  text: string | undefined,
): { id: unknown; createdAt: string | undefined; labels: Record<string, string> } | undefined {
  try {
    const meta = JSON.parse(text ?? '') as { id?: unknown; createdAt?: unknown; labels?: unknown };
    const createdAt =
      typeof meta.createdAt === 'string' && !Number.isNaN(Date.parse(meta.createdAt))
        ? meta.createdAt
        : undefined;
    const labels: Record<string, string> = {};
    if (meta.labels && typeof meta.labels === 'object')
      for (const [k, v] of Object.entries(meta.labels)) if (typeof v === 'string') labels[k] = v;
    return { id: meta.id, createdAt, labels };
  } catch {
    return undefined;
  }
}

/** The definition's sweep: `sweepSsh` for each asked id (or all). */
export async function sweepSshSandboxes(options: SweepOptions<SshResolvedConfig>): Promise<SweepReport> {
  const sandboxes: SweptSandbox[] = [];
  for (const sandboxId of options.ids ?? [undefined]) {
    options.signal?.throwIfAborted();
    const swept = await sweepSsh({
      config: options.config,
      dryRun: options.dryRun,
      olderThanMs: options.olderThanMs,
      sandboxId,
      labels: options.labels,
      all: options.all ?? false,
    });
    for (const s of swept)
      sandboxes.push({
        id: s.id,
        createdAt: s.createdAt,
        resources: [
          { type: 'directory', name: s.path },
          ...s.processes.map((pid) => ({ type: 'process', name: String(pid) })),
        ],
        removed: s.removed,
        ...(s.error === undefined ? {} : { error: s.error }),
      });
  }
  const { user, host, port, root } = options.config;
  return { location: `under ${root} on ${user}@${knownHostsName(host, port)}`, sandboxes };
}
