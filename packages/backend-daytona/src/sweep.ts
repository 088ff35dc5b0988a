/** Find the Daytona sandboxes agentbox created (by label) and delete them unless a dry run. */
import type { SweepOptions, SweepReport, SweptSandbox } from '@agentbox/core';
import { connectDaytona } from './client.js';
import type { DaytonaResolvedConfig } from './config.js';
import { ID_LABEL, MANAGED_LABEL } from './labels.js';

export async function sweepDaytona(options: SweepOptions<DaytonaResolvedConfig>): Promise<SweepReport> {
  const daytona = connectDaytona(options.config, { backend: 'daytona', operation: 'sweep' });
  const labels = { ...(options.labels ?? {}), [MANAGED_LABEL]: 'true' };
  const found: SweptSandbox[] = [];
  const now = Date.now();
  for await (const sandbox of daytona.list({ labels })) {
    if (options.signal?.aborted) break;
    const id = sandbox.labels?.[ID_LABEL] ?? '';
    if (options.ids && !options.ids.includes(id)) continue;
    const createdAt = sandbox.createdAt;
    if (options.olderThanMs !== undefined) {
      const age = createdAt ? now - Date.parse(createdAt) : Number.NaN;
      if (!(age >= options.olderThanMs)) continue;
    }
    const entry: SweptSandbox = {
      id,
      createdAt,
      resources: [{ type: 'daytona sandbox', name: `${sandbox.id} (${sandbox.state})` }],
      removed: false,
    };
    if (!options.dryRun) {
      try {
        await sandbox.delete();
        entry.removed = true;
      } catch (error) {
        entry.error = (error as Error).message;
      }
    }
    found.push(entry);
  }
  return { location: 'on the Daytona API', sandboxes: found };
}
