/**
 * Sweep: the sandboxes this backend left (crashes, kept and forgotten). Each sandbox directory
 * `<root>/<id>/` records its labels in sandbox.json; each instance is named `agentbox-<id>`.
 * Both are found, matched by id, and removed (instance stopped, directory deleted).
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SandboxIdSchema, type SweepOptions, type SweepReport, type SweptSandbox } from '@agentbox/core';
import { checkCli, findCli, type ListedInstance, listInstances } from './cli.js';
import { INSTANCE_PREFIX, type SingularityResolvedConfig } from './config.js';
import { removeTree } from './sandbox.js';

interface Found {
  createdAt: string | undefined;
  labels: Record<string, string> | undefined;
  dir?: string;
  instance?: ListedInstance;
}

export async function sweepSingularity(
  options: SweepOptions<SingularityResolvedConfig>,
): Promise<SweepReport> {
  const root = resolve(options.config.root);
  const context = { backend: 'singularity', operation: 'sweep', subject: root };
  const cli = findCli(options.config.binary, process.env.PATH ?? '');
  const found = new Map<string, Found>();
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (!SandboxIdSchema.safeParse(name).success) continue;
    const dir = join(root, name);
    const st = await lstat(join(dir, 'workspace')).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const meta = await readFile(join(dir, 'sandbox.json'), 'utf8')
      .then((text) => JSON.parse(text) as { createdAt?: string; labels?: Record<string, string> })
      .catch(() => undefined);
    found.set(name, { createdAt: meta?.createdAt, labels: meta?.labels, dir });
  }
  // Instances whose directory is gone are still ours by name; they carry no labels then.
  const instances = typeof cli === 'string' ? [] : await listInstances(cli, context);
  for (const instance of instances) {
    if (!instance.instance.startsWith(INSTANCE_PREFIX)) continue;
    const id = instance.instance.slice(INSTANCE_PREFIX.length);
    const entry = found.get(id) ?? { createdAt: undefined, labels: undefined };
    found.set(id, { ...entry, instance });
  }
  const report: SweepReport = {
    location: `under ${root}${typeof cli === 'string' ? ' (no CLI found: instances not listed)' : ` and in ${cli.flavour} instance list`}`,
    sandboxes: [],
  };
  const now = Date.now();
  for (const [id, entry] of [...found].sort(([a], [b]) => a.localeCompare(b))) {
    options.signal?.throwIfAborted();
    if (options.ids && !options.ids.includes(id)) continue;
    const wanted = Object.entries(options.labels ?? {});
    if (wanted.some(([k, v]) => entry.labels?.[k] !== v)) continue;
    if (options.olderThanMs) {
      const created = entry.createdAt ? Date.parse(entry.createdAt) : Number.NaN;
      if (!Number.isFinite(created) || now - created < options.olderThanMs) continue;
    }
    const swept: SweptSandbox = {
      id,
      createdAt: entry.createdAt,
      resources: [
        ...(entry.instance ? [{ type: 'instance', name: entry.instance.instance }] : []),
        ...(entry.dir ? [{ type: 'directory', name: entry.dir }] : []),
      ],
      removed: false,
    };
    if (!options.dryRun) {
      try {
        if (entry.instance && typeof cli !== 'string')
          await checkCli(
            cli,
            ['instance', 'stop', '--force', entry.instance.instance],
            'stopping the instance',
            {
              ...context,
              sandboxId: id,
            },
          );
        if (entry.dir) await removeTree(entry.dir);
        swept.removed = true;
      } catch (error) {
        swept.error = (error as Error).message;
      }
    }
    report.sandboxes.push(swept);
  }
  return report;
}
