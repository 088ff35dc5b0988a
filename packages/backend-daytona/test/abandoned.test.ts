/**
 * The dead man's switch: a sandbox whose owner vanished (never closed) is stopped and deleted by
 * Daytona itself, through the intervals the backend sets by default; sweep removes what is left.
 * The emulator runs Daytona's lifecycle with one interval minute lasting 100 ms.
 */
import { openSandbox } from '@agentbox/core';
import { describe, expect, it } from 'vitest';
import { DaytonaConfigSchema, daytona } from '../src/index.js';
import { emulatorForFile, RUN_LABEL, runId, runSandboxes } from './emulator.ts';

const MINUTE_MS = 100;
const { config, sdk } = await emulatorForFile({ minuteMs: MINUTE_MS });

async function stateOf(id: string): Promise<string> {
  return sdk.get(id).then(
    (s) => s.state ?? 'unknown',
    (error: { statusCode?: number }) => (error.statusCode === 404 ? 'gone' : `error ${error.statusCode}`),
  );
}

async function waitFor(what: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return what();
}

describe('an abandoned sandbox', () => {
  it('is stopped after the default idle interval and deleted once stopped, without any call from its owner', async () => {
    const labels = { [RUN_LABEL]: runId, 'agentbox.case': 'abandoned' };
    const sandbox = await openSandbox({ backend: 'daytona', config, policy: { labels } });
    expect((await sandbox.exec('echo alive')).stdout).toBe('alive\n');
    const [found] = await listWith(labels);
    expect(found).toBeDefined();
    const remote = await sdk.get(found!);
    // The defaults the backend set: never "0 = no auto-stop".
    expect(remote.autoStopInterval).toBe(15);
    expect(remote.autoDeleteInterval).toBe(0);
    // The owner "crashes": no close, no more calls. 15 emulated minutes are 1.5 s.
    const seen = new Set<string>();
    const gone = await waitFor(
      async () => {
        const state = await stateOf(found!);
        seen.add(state);
        return state === 'gone';
      },
      30 * MINUTE_MS * 2,
    );
    expect(gone, `states seen: ${[...seen].join(', ')}`).toBe(true);
    expect(seen.has('started')).toBe(true);
  });

  it('kept after stopping (autoDeleteMinutes -1) is left for sweep, which deletes it', async () => {
    const labels = { [RUN_LABEL]: runId, 'agentbox.case': 'sweep' };
    const kept = { ...config, autoStopMinutes: 1, autoDeleteMinutes: -1 };
    const sandbox = await openSandbox({ backend: 'daytona', config: kept, policy: { labels } });
    const [found] = await listWith(labels);
    expect(found).toBeDefined();
    expect(await waitFor(async () => (await stateOf(found!)) === 'stopped', 20 * MINUTE_MS)).toBe(true);
    // Still there well after it stopped.
    await new Promise((r) => setTimeout(r, 5 * MINUTE_MS));
    expect(await stateOf(found!)).toBe('stopped');

    const parsed = DaytonaConfigSchema.parse(kept);
    const dry = await daytona.sweep!({ config: parsed, dryRun: true, labels });
    expect(dry.sandboxes.map((s) => [s.id, s.removed])).toEqual([[sandbox.id, false]]);
    expect(await stateOf(found!)).toBe('stopped');
    const swept = await daytona.sweep!({ config: parsed, dryRun: false, labels });
    expect(swept.sandboxes.map((s) => [s.id, s.removed])).toEqual([[sandbox.id, true]]);
    expect(await stateOf(found!)).toBe('gone');
    expect(await runSandboxes(sdk)).toEqual([]);
  });
});

async function listWith(labels: Record<string, string>): Promise<string[]> {
  const ids: string[] = [];
  for await (const s of sdk.list({ labels })) ids.push(s.id);
  return ids;
}
