/** Shared by the daytona tests: one Daytona emulator per test file, and this run's sandboxes in it. */
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DaytonaEmulator, startDaytonaEmulator } from '@agentbox/emulators';
import { Daytona } from '@daytonaio/sdk';
import { afterAll } from 'vitest';
import { recordEmulatorInstance, sessionRunId } from '../../../scripts/leak-check.ts';
import type { DaytonaConfig } from '../src/index.js';

export const RUN_LABEL = 'agentbox.test-run';
/** Starts with the session id of the leak check (global-setup.ts), which looks for this run's objects by it. */
export const runId = sessionRunId();

/** Start an emulator for this file (closed after it) and the backend config that reaches it. */
export async function emulatorForFile(
  options: { minuteMs?: number } = {},
): Promise<{ emulator: DaytonaEmulator; config: DaytonaConfig; sdk: Daytona }> {
  const emulator = await startDaytonaEmulator({ ...options, log: () => {} });
  recordEmulatorInstance(emulator.instance);
  afterAll(() => emulator.close(), 60_000);
  const config: DaytonaConfig = { apiUrl: emulator.url, apiKey: emulator.apiKey, polling: true };
  const sdk = new Daytona({ apiUrl: emulator.url, apiKey: emulator.apiKey, useDeprecatedPolling: true });
  return { emulator, config, sdk };
}

/** The same, with the emulator in a child process (its memory is not the test process's). */
export async function emulatorProcessForFile(): Promise<{ config: DaytonaConfig; sdk: Daytona }> {
  const script = fileURLToPath(new URL('./emulator-process.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: dirname(script),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  afterAll(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }, 60_000);
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes('\n')) resolve(text.split('\n')[0]!);
    });
    child.once('exit', (code) =>
      reject(new Error(`the emulator process exited with ${code} before it listened`)),
    );
  });
  const { url, apiKey } = JSON.parse(line) as { url: string; apiKey: string };
  const config: DaytonaConfig = { apiUrl: url, apiKey, polling: true };
  const sdk = new Daytona({ apiUrl: url, apiKey, useDeprecatedPolling: true });
  return { config, sdk };
}

/** This run's Daytona sandboxes, as `id:state`. */
export async function runSandboxes(sdk: Daytona): Promise<string[]> {
  const found: string[] = [];
  for await (const sandbox of sdk.list({ labels: { [RUN_LABEL]: runId } }))
    found.push(`${sandbox.id}:${sandbox.state}`);
  return found.sort();
}
