/** Find the Modal sandboxes agentbox created (by tag) and terminate them unless a dry run. */
import type { SweepOptions, SweepReport, SweptSandbox } from '@agentbox/core';
import { modalClient } from './client.js';
import type { ModalResolvedConfig } from './config.js';
import { ID_LABEL, MANAGED_LABEL } from './labels.js';

export async function sweepModal(options: SweepOptions<ModalResolvedConfig>): Promise<SweepReport> {
  const client = modalClient(options.config, { backend: 'modal', operation: 'sweep' });
  const found: SweptSandbox[] = [];
  try {
    const app = await client.apps.fromName(options.config.appName, { createIfMissing: true });
    const tags = { ...(options.labels ?? {}), [MANAGED_LABEL]: 'true' };
    for await (const sandbox of client.sandboxes.list({ appId: app.appId, tags })) {
      if (options.signal?.aborted) break;
      const id = (await sandbox.getTags())[ID_LABEL] ?? '';
      if (options.ids && !options.ids.includes(id)) {
        sandbox.detach();
        continue;
      }
      // The SDK's sandbox handle carries no creation time: an age filter cannot be checked, so
      // nothing is removed under one (never a sandbox that may be young).
      if (options.olderThanMs !== undefined) {
        sandbox.detach();
        continue;
      }
      const entry: SweptSandbox = {
        id,
        createdAt: undefined,
        resources: [{ type: 'modal sandbox', name: sandbox.sandboxId }],
        removed: false,
      };
      if (!options.dryRun) {
        try {
          await sandbox.terminate();
          entry.removed = true;
        } catch (error) {
          entry.error = (error as Error).message;
        }
      }
      sandbox.detach();
      found.push(entry);
    }
  } finally {
    client.close();
  }
  return { location: `in Modal app ${options.config.appName}`, sandboxes: found };
}
