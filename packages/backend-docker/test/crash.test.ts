/**
 * The library process SIGKILLed in the middle of a checkpoint and of a rollback on docker (issue
 * 18), through the shared rounds of scripts/crash.ts: a child re-attaches to one sandbox by id
 * and works in a loop until it is killed; every re-attach then finds each finished checkpoint
 * listed and verifying, the one in flight whole or absent, a rollback cut short finished (one
 * state, never a mix), and the sandbox working.
 */
import { openSandbox, type SandboxSpec } from '@agentbox/core';
import { afterAll, describe, expect, it } from 'vitest';
import { crashRounds } from '../../../scripts/crash.ts';
import '../src/index.js';
import { RUN_LABEL, runId, runObjects, TEST_CONFIG } from './helpers.ts';

const id = `crash-${runId}`;
const spec = (keep: boolean): SandboxSpec => ({
  backend: 'docker',
  id,
  config: { ...TEST_CONFIG, keep },
  policy: { labels: { [RUN_LABEL]: runId } },
});

afterAll(async () => {
  // The last handle is not kept: container, volumes and store go.
  await (await openSandbox(spec(false))).close();
  expect((await runObjects()).filter((o) => o.includes(id))).toEqual([]);
});

describe('the library process SIGKILLed mid-checkpoint and mid-rollback (docker)', () => {
  it('a re-attach by id finds every finished checkpoint verifiable, the one in flight whole or absent, and a cut rollback finished', async () => {
    const started = Date.now();
    // One kill inside a checkpoint and one inside a rollback (each child start costs seconds here).
    const landed = await crashRounds(
      {
        core: import.meta.resolve('@agentbox/core'),
        testFile: import.meta.url,
        spec: spec(true),
        reattach: () => openSandbox(spec(true)),
        files: 300,
      },
      [
        { step: 'c', delayMs: 60 },
        { step: 'b', delayMs: 60 },
      ],
    );
    console.log(`docker crash: kills after ${JSON.stringify(landed)}, ${Date.now() - started} ms`);
    // The kills must have cut into a checkpoint and into a rollback, not only between steps.
    expect(landed).toContain('c');
    expect(landed).toContain('b');
  }, 120_000);
});
