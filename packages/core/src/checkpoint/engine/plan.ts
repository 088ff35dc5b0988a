/**
 * The restore plan, shared by both stores: a validated manifest against a listing of the live
 * tree gives ordered steps, which each store carries out its own way (shell text or fs calls).
 *
 * Order: (1) open every live directory the restorer could not write into (their modes come
 * back in the last step), (2) remove, topmost first, everything the checkpoint does not have
 * or has as another type, and every symlink whose target differs, (3) create in path order
 * (parents first): directories, symlinks, files, (4) owners and modes of what was kept, (5)
 * directory modes, deepest first. A path is never reached through a live symlink: a symlink
 * (or any non-directory) where the checkpoint has a directory is removed in (2) before
 * anything is created below it, and files are put in place by rename, which replaces a link
 * rather than following it. (A process that swaps a directory for a symlink *while* the
 * restore runs is out of the plan's reach: the sandbox must not run meanwhile.)
 */
import type { EntryType } from './manifest.js';

export interface PlanEntry {
  path: string;
  type: EntryType;
  mode: number;
  uid?: number | undefined;
  gid?: number | undefined;
  target?: string | undefined;
}

export interface LiveEntry extends PlanEntry {
  liveKey?: string | undefined;
  racy?: boolean | undefined;
}

export interface RestorePlan<E extends PlanEntry> {
  /** Live directories lacking u+rwx: opened first. */
  open: string[];
  /** Topmost paths to remove (with what is below them). */
  remove: string[];
  /** Parents first. `write` puts a file's content in place (with its mode, owner, mtime). */
  create: { kind: 'mkdir' | 'symlink' | 'write'; entry: E }[];
  /** Entries (any type, not written files) whose owner must be set. */
  chown: E[];
  /** Kept files whose mode differs. */
  chmod: E[];
  /** Directories whose mode is set last, deepest first. */
  dirModes: E[];
  /** Files whose live content was kept. */
  kept: Set<string>;
}

export interface PlanOptions<E extends PlanEntry> {
  /** Put owners back (the restorer may chown). */
  owners: boolean;
  /** Whether a live file still holds `want`'s content (store-specific stat-key rules). */
  unchanged: (want: E, have: LiveEntry) => boolean;
}

export function planRestore<E extends PlanEntry>(
  wanted: readonly E[],
  live: ReadonlyMap<string, LiveEntry>,
  options: PlanOptions<E>,
): RestorePlan<E> {
  const want = new Map(wanted.map((e) => [e.path, e]));
  const plan: RestorePlan<E> = {
    open: [],
    remove: [],
    create: [],
    chown: [],
    chmod: [],
    dirModes: [],
    kept: new Set(),
  };
  const liveSorted = [...live.values()].sort((a, b) => compareBytes(a.path, b.path));

  const opened = new Set<string>();
  for (const e of liveSorted) {
    if (e.type !== 'dir' || (e.mode & 0o700) === 0o700) continue;
    plan.open.push(e.path);
    opened.add(e.path);
  }

  const removed = new Set<string>();
  for (const e of liveSorted) {
    const w = want.get(e.path);
    const doomed = w?.type !== e.type || (e.type === 'symlink' && w.target !== e.target);
    if (!doomed) continue;
    if (!hasAncestorIn(e.path, removed)) plan.remove.push(e.path);
    removed.add(e.path);
  }
  const present = (path: string) =>
    live.has(path) && (removed.size === 0 || (!removed.has(path) && !hasAncestorIn(path, removed)));

  const dirModes: E[] = [];
  for (const entry of [...wanted].sort((a, b) => compareBytes(a.path, b.path))) {
    const have = present(entry.path) ? live.get(entry.path) : undefined;
    const ownerDiffers = options.owners && (!have || have.uid !== entry.uid || have.gid !== entry.gid);
    if (entry.type === 'dir') {
      if (!have) plan.create.push({ kind: 'mkdir', entry });
      if (ownerDiffers) plan.chown.push(entry);
      if (!have || have.mode !== entry.mode || opened.has(entry.path)) dirModes.push(entry);
    } else if (entry.type === 'symlink') {
      if (!have) plan.create.push({ kind: 'symlink', entry });
      if (ownerDiffers) plan.chown.push(entry);
    } else if (have && options.unchanged(entry, have)) {
      plan.kept.add(entry.path);
      if (ownerDiffers) plan.chown.push(entry);
      if (have.mode !== entry.mode) plan.chmod.push(entry);
    } else plan.create.push({ kind: 'write', entry });
  }
  plan.dirModes = dirModes.reverse();
  return plan;
}

/** Byte (code unit) order, with `/` first so that a directory precedes its contents. */
export function compareBytes(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i) === 0x2f ? -1 : a.charCodeAt(i);
    const y = b.charCodeAt(i) === 0x2f ? -1 : b.charCodeAt(i);
    if (x !== y) return x - y;
  }
  return a.length - b.length;
}

export function hasAncestorIn(path: string, set: ReadonlySet<string>): boolean {
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1))
    if (set.has(path.slice(0, i))) return true;
  return false;
}
