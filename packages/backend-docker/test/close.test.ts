/**
 * Closing a docker sandbox while its first checkpoint is under way (the checkpoint helper
 * container still starting, or the checkpoint running): close succeeds, the checkpoint settles
 * with a result or a typed error, and nothing of the sandbox is left: no container, no volume.
 */
import { AgentboxError, openSandbox } from '@agentbox/core';
import { describe, expect, it } from 'vitest';
import '../src/index.js';
import { docker, RUN_LABEL, runId, TEST_CONFIG } from './helpers.ts';

const MARK = 'agentbox.test-close';

/** Containers and volumes carrying `MARK=value`. */
async function marked(value: string): Promise<string[]> {
  const filters = JSON.stringify({ label: [`${MARK}=${value}`] });
  const [containers, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listVolumes({ filters }),
  ]);
  return [
    ...containers.map((c) => `container:${c.Names[0]}`),
    ...(volumes.Volumes ?? []).map((v) => `volume:${v.Name}`),
  ];
}

describe('docker close during a checkpoint', () => {
  it.each([-1, 0, 20, 40, 120])(
    'a close %i ms into the first checkpoint leaves nothing behind (-1: in the same tick)',
    async (delay) => {
      const value = `${runId}-${delay}`;
      const sandbox = await openSandbox({
        backend: 'docker',
        config: TEST_CONFIG,
        policy: { labels: { [RUN_LABEL]: runId, [MARK]: value } },
      });
      // A tree of some size, written through the session shells (whose close takes a moment).
      const made = await sandbox.exec([
        'sh',
        '-c',
        'i=0; while [ $i -lt 200 ]; do echo $i > f$i; i=$((i+1)); done',
      ]);
      expect(made.exitCode).toBe(0);
      const checkpoint = sandbox.checkpoint().then(
        () => 'done',
        (error: unknown) => error,
      );
      if (delay >= 0) await new Promise((resolve) => setTimeout(resolve, delay));
      await sandbox.close();
      const outcome = await checkpoint;
      if (outcome !== 'done') expect(outcome).toBeInstanceOf(AgentboxError);
      expect(await marked(value)).toEqual([]);
    },
  );
});
