/**
 * Vercel backend against the Vercel emulator (@agentbox/emulators, sessions as local Docker
 * containers), beside the bare @vercel/sandbox against the same emulator in the same run: a
 * small exec (`true`) vs one `runCommand` through the SDK, and open-to-first-exec vs the SDK's
 * create + runCommand.
 */
import '@agentbox/backend-vercel';
import { openSandbox } from '@agentbox/core';
import { startVercelEmulator } from '@agentbox/emulators';
import { Sandbox } from '@vercel/sandbox';
import { medianMs, report, skip, timeMs } from './harness.js';

export async function run(): Promise<void> {
  let emulator: Awaited<ReturnType<typeof startVercelEmulator>>;
  try {
    emulator = await startVercelEmulator({ log: () => {} });
  } catch (error) {
    skip('vercel', `the emulator could not start: ${(error as Error).message}`);
    return;
  }
  try {
    const { url, token, teamId, projectId, fetch } = emulator;
    const config = { apiUrl: url, token, teamId, projectId };
    const sdk = { token, teamId, projectId, fetch };

    const sandbox = await openSandbox({ backend: 'vercel', config });
    const bare = await Sandbox.create(sdk);
    try {
      const backendExec = await medianMs(() => sandbox.exec('true'), { runs: 15 });
      const bareExec = await medianMs(() => bare.runCommand('true'), { runs: 15 });
      report({
        bench: 'exec true',
        backend: 'vercel (emulator)',
        value: backendExec,
        unit: 'ms',
        baseline: 'bare SDK runCommand',
        baselineValue: bareExec,
      });
    } finally {
      await sandbox.close();
      await bare.delete();
    }

    const opens: number[] = [];
    const bareOpens: number[] = [];
    // Removal is not part of the figure, but finishes before the emulator stops.
    const removals: Promise<unknown>[] = [];
    for (let i = 0; i < 3; i++) {
      opens.push(
        await timeMs(async () => {
          const sb = await openSandbox({ backend: 'vercel', config });
          await sb.exec('true');
          removals.push(sb.close().catch(() => {}));
        }),
      );
      bareOpens.push(
        await timeMs(async () => {
          const sb = await Sandbox.create(sdk);
          await sb.runCommand('true');
          removals.push(sb.delete().catch(() => {}));
        }),
      );
    }
    await Promise.all(removals);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    report({
      bench: 'open to first exec',
      backend: 'vercel (emulator)',
      value: median(opens),
      unit: 'ms',
      baseline: 'bare SDK create + runCommand',
      baselineValue: median(bareOpens),
    });
  } finally {
    await emulator.close();
  }
}
