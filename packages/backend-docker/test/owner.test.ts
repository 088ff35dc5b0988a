/**
 * Sweeping on a shared daemon: every sandbox carries its owner's label, and a sweep removes only
 * this owner's leftovers unless asked for all of them.
 */
import { hostname, userInfo } from 'node:os';
import { openSandbox } from '@agentbox/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DockerConfigSchema,
  type DockerSandbox,
  docker as dockerBackend,
  sweepDocker,
} from '../src/index.js';
import { docker, RUN_LABEL, runId, runObjects, TEST_CONFIG, TEST_IMAGE } from './helpers.ts';

const labels = { [RUN_LABEL]: runId };

/** A container as another user's agentbox would have left it on this daemon. */
async function othersSandbox(id: string, owner: string | undefined): Promise<string> {
  const container = await docker.createContainer({
    name: `agentbox-${id}`,
    Image: TEST_IMAGE,
    Cmd: ['true'],
    Labels: {
      'agentbox.creator': 'agentbox',
      'agentbox.sandbox-id': id,
      'agentbox.role': 'sandbox',
      'agentbox.created': new Date().toISOString(),
      ...(owner ? { 'agentbox.owner': owner } : {}),
      ...labels,
    },
  });
  return container.id;
}

async function exists(containerId: string): Promise<boolean> {
  return docker
    .getContainer(containerId)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

afterAll(async () => {
  await sweepDocker({ labels, all: true });
});

describe('owner labels and sweep', () => {
  it("a default sweep removes this owner's leaked sandbox and leaves another owner's; all: true removes it too", async () => {
    const leaked = (await openSandbox({
      backend: 'docker',
      config: { ...TEST_CONFIG, keep: true },
      policy: { labels },
    })) as DockerSandbox;
    await leaked.close();
    const info = await docker.getContainer(leaked.containerId).inspect();
    expect(info.Config.Labels['agentbox.owner']).toBe(`${userInfo().username}@${hostname()}`);
    const theirs = await othersSandbox(`theirs-${runId}`, 'someone-else@another-host');
    const unowned = await othersSandbox(`unowned-${runId}`, undefined);

    const swept = await sweepDocker({ labels });
    expect([...new Set(swept.removed.map((o) => o.sandboxId))]).toEqual([leaked.id]);
    expect(await exists(leaked.containerId)).toBe(false);
    expect(await exists(theirs)).toBe(true);
    expect(await exists(unowned)).toBe(true);

    // Through the backend definition (the CLI's `sweep --all`).
    const config = DockerConfigSchema.parse(TEST_CONFIG);
    const dry = await dockerBackend.sweep!({ config, dryRun: true, labels });
    expect(dry.sandboxes).toEqual([]);
    const all = await dockerBackend.sweep!({ config, dryRun: false, labels, all: true });
    expect(all.sandboxes.map((s) => s.id).sort()).toEqual([`theirs-${runId}`, `unowned-${runId}`]);
    expect(await exists(theirs)).toBe(false);
    expect(await runObjects()).toEqual([]);
  });

  it('config.owner names the owner; a sweep for that owner finds the sandbox, the default owner does not', async () => {
    const leaked = (await openSandbox({
      backend: 'docker',
      config: { ...TEST_CONFIG, keep: true, owner: `ci-team-${runId}` },
      policy: { labels },
    })) as DockerSandbox;
    await leaked.close();
    expect((await sweepDocker({ labels, dryRun: true })).found).toEqual([]);
    const config = DockerConfigSchema.parse({ ...TEST_CONFIG, owner: `ci-team-${runId}` });
    const swept = await dockerBackend.sweep!({ config, dryRun: false, labels });
    expect(swept.sandboxes).toMatchObject([{ id: leaked.id, removed: true }]);
    // A sandbox named by id is swept whoever owns it.
    const named = await othersSandbox(`named-${runId}`, 'someone-else@another-host');
    await sweepDocker({ labels, sandboxId: `named-${runId}` });
    expect(await exists(named)).toBe(false);
  });
});
