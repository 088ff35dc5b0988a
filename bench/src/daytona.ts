/**
 * Daytona backend against the Daytona emulator (@agentbox/emulators, sandboxes as local Docker
 * containers), beside the bare @daytonaio/sdk against the same emulator in the same run: a
 * small exec (`true`) vs one session exec through the SDK, and open-to-first-exec vs the SDK's
 * create + session + exec.
 */
import '@agentbox/backend-daytona';
import { openSandbox } from '@agentbox/core';
import { startDaytonaEmulator } from '@agentbox/emulators';
import { Daytona } from '@daytonaio/sdk';
import { medianMs, report, skip, timeMs } from './harness.js';

export async function run(): Promise<void> {
  let emulator: Awaited<ReturnType<typeof startDaytonaEmulator>>;
  try {
    emulator = await startDaytonaEmulator({ log: () => {} });
  } catch (error) {
    skip('daytona', `the emulator could not start: ${(error as Error).message}`);
    return;
  }
  try {
    const config = { apiUrl: emulator.url, apiKey: emulator.apiKey, polling: true };
    const sdk = new Daytona({ apiUrl: emulator.url, apiKey: emulator.apiKey, useDeprecatedPolling: true });

    const sandbox = await openSandbox({ backend: 'daytona', config });
    const bare = await sdk.create();
    await bare.process.createSession('bench');
    try {
      const backendExec = await medianMs(() => sandbox.exec('true'), { runs: 15 });
      const bareExec = await medianMs(
        () => bare.process.executeSessionCommand('bench', { command: 'true' }),
        {
          runs: 15,
        },
      );
      report({
        bench: 'exec true',
        backend: 'daytona (emulator)',
        value: backendExec,
        unit: 'ms',
        baseline: 'bare SDK session exec',
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
          const sb = await openSandbox({ backend: 'daytona', config });
          await sb.exec('true');
          removals.push(sb.close().catch(() => {}));
        }),
      );
      bareOpens.push(
        await timeMs(async () => {
          const sb = await sdk.create();
          await sb.process.createSession('first');
          await sb.process.executeSessionCommand('first', { command: 'true' });
          removals.push(sb.delete().catch(() => {}));
        }),
      );
    }
    await Promise.all(removals);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    report({
      bench: 'open to first exec',
      backend: 'daytona (emulator)',
      value: median(opens),
      unit: 'ms',
      baseline: 'bare SDK create + session + exec',
      baselineValue: median(bareOpens),
    });
  } finally {
    await emulator.close();
  }
}
