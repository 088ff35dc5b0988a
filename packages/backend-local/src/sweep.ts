/**
 * Sweep for the local backend: find sandbox directories (`<root>/<id>/workspace`) and remove
 * those older than a given age. Only directories that look like sandboxes are touched: a name
 * that is a valid sandbox id and a `workspace` directory inside; symlinks are never followed.
 * With `labels`, only sandboxes opened with those policy labels (kept in `labels.json` beside the
 * workspace). The default root is shared by every user of the machine: a directory another user owns is
 * left alone unless `all` is set or it is named by id (root could otherwise remove anyone's).
 */
import type { Stats } from 'node:fs';
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SandboxIdSchema, type SweepOptions, type SweepReport, type SweptSandbox } from '@agentbox/core';
import { toAgentboxError } from '@agentbox/core/backend';

/** Beside `workspace`: the policy labels a sandbox was opened with, as JSON. */
export const LABELS_FILE = 'labels.json';

export async function sweepLocal(
  options: SweepOptions<{ root: string }> & { now?: number },
): Promise<SweepReport> {
  const root = resolve(options.config.root);
  const report: SweepReport = { location: `under ${root}`, sandboxes: [] };
  const olderThanMs = options.olderThanMs ?? 0;
  const now = options.now ?? Date.now();
  const context = { backend: 'local', operation: 'sweep', subject: root };
  const uid = process.getuid?.();
  let names: string[];
  try {
    names = (await readdir(root, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory() && SandboxIdSchema.safeParse(entry.name).success)
      .filter((entry) => options.ids === undefined || options.ids.includes(entry.name))
      .map((entry) => entry.name)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return report;
    throw toAgentboxError(error, context);
  }
  for (const id of names) {
    options.signal?.throwIfAborted();
    const path = join(root, id);
    const [dir, workspace] = await Promise.all([
      lstatOrUndefined(path),
      lstatOrUndefined(join(path, 'workspace')),
    ]);
    if (!dir?.isDirectory() || !workspace?.isDirectory()) continue;
    if (options.labels && !(await hasLabels(path, options.labels))) continue;
    if (!options.all && options.ids === undefined && uid !== undefined && dir.uid !== uid) continue;
    const created = dir.birthtimeMs > 0 ? dir.birthtimeMs : dir.mtimeMs;
    if (Math.max(0, now - created) < olderThanMs) continue;
    const swept: SweptSandbox = {
      id,
      createdAt: new Date(created).toISOString(),
      resources: [{ type: 'directory', name: path }],
      removed: false,
    };
    if (!options.dryRun) {
      try {
        await rm(path, { recursive: true, force: true });
        swept.removed = true;
      } catch (error) {
        swept.error = toAgentboxError(error, { ...context, sandboxId: id, subject: path }).message;
      }
    }
    report.sandboxes.push(swept);
  }
  return report;
}

function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  return lstat(path).catch(() => undefined);
}

/** Whether the sandbox at `path` was opened with every one of `wanted` (one without labels has none). */
async function hasLabels(path: string, wanted: Readonly<Record<string, string>>): Promise<boolean> {
  let labels: unknown;
  try {
    labels = JSON.parse(await readFile(join(path, LABELS_FILE), 'utf8'));
  } catch {
    labels = {};
  }
  const have = (labels ?? {}) as Record<string, unknown>;
  return Object.entries(wanted).every(([key, value]) => have[key] === value);
}
