/**
 * Sweep for the local backend: find sandbox directories (`<root>/<id>/workspace`) and remove
 * those older than a given age. Only directories that look like sandboxes are touched: a name
 * that is a valid sandbox id and a `workspace` directory inside; symlinks are never followed.
 */
import type { Stats } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SandboxIdSchema, toAgentboxError } from '@agentbox/core';

export interface LocalSweepOptions {
  /** The local backend's root directory (its config `root`). */
  root: string;
  /** List what would be removed without removing anything. */
  dryRun?: boolean;
  /** Only sandboxes created at least this long ago (default 0: every sandbox). */
  olderThanMs?: number;
  /** Only this sandbox. */
  sandboxId?: string;
  /** The current time, for tests (default Date.now()). */
  now?: number;
}

export interface SweptLocalSandbox {
  id: string;
  path: string;
  /** ISO 8601: the directory's birth time where the filesystem records one, else its mtime. */
  createdAt: string;
  ageMs: number;
  /** False in a dry run. */
  removed: boolean;
}

export async function sweepLocal(options: LocalSweepOptions): Promise<SweptLocalSandbox[]> {
  const root = resolve(options.root);
  const olderThanMs = options.olderThanMs ?? 0;
  const now = options.now ?? Date.now();
  const context = { backend: 'local', operation: 'sweep', subject: root };
  let names: string[];
  try {
    names = (await readdir(root, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory() && SandboxIdSchema.safeParse(entry.name).success)
      .filter((entry) => options.sandboxId === undefined || entry.name === options.sandboxId)
      .map((entry) => entry.name)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw toAgentboxError(error, context);
  }
  const swept: SweptLocalSandbox[] = [];
  for (const id of names) {
    const path = join(root, id);
    const [dir, workspace] = await Promise.all([
      lstatOrUndefined(path),
      lstatOrUndefined(join(path, 'workspace')),
    ]);
    if (!dir?.isDirectory() || !workspace?.isDirectory()) continue;
    const created = dir.birthtimeMs > 0 ? dir.birthtimeMs : dir.mtimeMs;
    const ageMs = Math.max(0, Math.round(now - created));
    if (ageMs < olderThanMs) continue;
    if (!options.dryRun) {
      try {
        await rm(path, { recursive: true, force: true });
      } catch (error) {
        throw toAgentboxError(error, { ...context, sandboxId: id, subject: path });
      }
    }
    swept.push({ id, path, createdAt: new Date(created).toISOString(), ageMs, removed: !options.dryRun });
  }
  return swept;
}

function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  return lstat(path).catch(() => undefined);
}
