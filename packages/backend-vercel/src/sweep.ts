/** Find the Vercel sandboxes agentbox created (by tag) and delete them unless a dry run. */
import type { SweepOptions, SweepReport, SweptSandbox } from '@agentbox/core';
import { Sandbox } from '@vercel/sandbox';
import { vercelCredentials } from './client.js';
import type { VercelResolvedConfig } from './config.js';
import { ID_LABEL, MANAGED_LABEL } from './labels.js';

export async function sweepVercel(options: SweepOptions<VercelResolvedConfig>): Promise<SweepReport> {
  const credentials = vercelCredentials(options.config, { backend: 'vercel', operation: 'sweep' });
  // Vercel filters a list by one tag: the managed one; the caller's labels are checked here.
  const labels = options.labels ?? {};
  const found: SweptSandbox[] = [];
  const now = Date.now();
  const listed = await Sandbox.list({ ...credentials, tags: { [MANAGED_LABEL]: 'true' } });
  for await (const sandbox of listed) {
    if (options.signal?.aborted) break;
    const tags = sandbox.tags ?? {};
    if (!Object.entries(labels).every(([k, v]) => tags[k] === v)) continue;
    const id = tags[ID_LABEL] ?? '';
    if (options.ids && !options.ids.includes(id)) continue;
    if (options.olderThanMs !== undefined && !(now - sandbox.createdAt >= options.olderThanMs)) continue;
    const entry: SweptSandbox = {
      id,
      createdAt: new Date(sandbox.createdAt).toISOString(),
      resources: [{ type: 'vercel sandbox', name: `${sandbox.name} (${sandbox.status})` }],
      removed: false,
    };
    if (!options.dryRun) {
      try {
        const handle = await Sandbox.get({ ...credentials, name: sandbox.name });
        await handle.delete({ deleteOrphanSnapshots: true });
        entry.removed = true;
      } catch (error) {
        entry.error = (error as Error).message;
      }
    }
    found.push(entry);
  }
  return { location: 'on the Vercel API', sandboxes: found };
}
