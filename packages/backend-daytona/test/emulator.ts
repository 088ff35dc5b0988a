/** Shared by the daytona tests: one Daytona emulator per test file, and this run's sandboxes in it. */
import { type DaytonaEmulator, startDaytonaEmulator } from '@agentbox/emulators';
import { Daytona } from '@daytonaio/sdk';
import { afterAll } from 'vitest';
import type { DaytonaConfigInput } from '../src/index.js';

export const RUN_LABEL = 'agentbox.test-run';
export const runId = `${process.pid}-${Date.now().toString(36)}`;

/** Start an emulator for this file (closed after it) and the backend config that reaches it. */
export async function emulatorForFile(
  options: { minuteMs?: number } = {},
): Promise<{ emulator: DaytonaEmulator; config: DaytonaConfigInput; sdk: Daytona }> {
  const emulator = await startDaytonaEmulator({ ...options, log: () => {} });
  afterAll(() => emulator.close(), 60_000);
  const config: DaytonaConfigInput = { apiUrl: emulator.url, apiKey: emulator.apiKey, polling: true };
  const sdk = new Daytona({ apiUrl: emulator.url, apiKey: emulator.apiKey, useDeprecatedPolling: true });
  return { emulator, config, sdk };
}

/** This run's Daytona sandboxes, as `id:state`. */
export async function runSandboxes(sdk: Daytona): Promise<string[]> {
  const found: string[] = [];
  for await (const sandbox of sdk.list({ labels: { [RUN_LABEL]: runId } }))
    found.push(`${sandbox.id}:${sandbox.state}`);
  return found.sort();
}
