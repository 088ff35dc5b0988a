/** Shared by the modal tests: one Modal emulator per test file, and this run's sandboxes in it. */
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ModalEmulator, startModalEmulator } from '@agentbox/emulators';
import { afterAll } from 'vitest';
import { recordEmulatorInstance, sessionRunId } from '../../../scripts/leak-check.ts';
import type { ModalConfig } from '../src/index.js';

export const RUN_LABEL = 'agentbox.test-run';
/** Starts with the session id of the leak check (global-setup.ts), which looks for this run's objects by it. */
export const runId = sessionRunId();
// The SDK warns once per sandbox that it dials the local router without TLS: expected here.
process.env.MODAL_LOGLEVEL ??= 'error';

/** The local image every test sandbox runs (never pulled). */
export const TEST_IMAGE = 'agentbox/busybox:test';

/** The backend config that reaches an emulator at `url`. */
export function configFor(emulator: { url: string; tokenId: string; tokenSecret: string }): ModalConfig {
  return {
    serverUrl: emulator.url,
    tokenId: emulator.tokenId,
    tokenSecret: emulator.tokenSecret,
    image: TEST_IMAGE,
    workdir: '/tmp',
  };
}

/** Start an emulator for this file (closed after it) and the backend config that reaches it. */
export async function emulatorForFile(): Promise<{ emulator: ModalEmulator; config: ModalConfig }> {
  const emulator = await startModalEmulator({ log: () => {} });
  recordEmulatorInstance(emulator.instance);
  afterAll(() => emulator.close(), 60_000);
  return { emulator, config: configFor(emulator) };
}

/** The same, with the emulator in a child process (its memory is not the test process's). */
export async function emulatorProcessForFile(): Promise<{ config: ModalConfig }> {
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
  return { config: configFor(JSON.parse(line) as { url: string; tokenId: string; tokenSecret: string }) };
}
