/** Shared by the vercel tests: one Vercel emulator per test file, and this run's sandboxes in it. */
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startVercelEmulator } from '@agentbox/emulators';
import { Sandbox } from '@vercel/sandbox';
import { afterAll } from 'vitest';
import { recordEmulatorInstance, sessionRunId } from '../../../scripts/leak-check.ts';
import type { VercelConfig } from '../src/index.js';

export const RUN_LABEL = 'agentbox.test-run';
/** Starts with the session id of the leak check (global-setup.ts), which looks for this run's objects by it. */
export const runId = sessionRunId();

interface Reached {
  url: string;
  token: string;
  teamId: string;
  projectId: string;
}

/** The backend config, and the bare SDK's credentials, that reach an emulator. */
function reach({ url, token, teamId, projectId }: Reached) {
  const config: VercelConfig = { apiUrl: url, token, teamId, projectId };
  const sdk = {
    token,
    teamId,
    projectId,
    fetch: ((input, init) =>
      globalThis.fetch(String(input).replace('https://vercel.com/api', url), init)) as typeof fetch,
  };
  return { config, sdk };
}

/** Start an emulator in this process for this file (closed after it). */
export async function emulatorForFile() {
  const emulator = await startVercelEmulator({ log: () => {} });
  recordEmulatorInstance(emulator.instance);
  afterAll(() => emulator.close(), 60_000);
  return reach(emulator);
}

/** The same, with the emulator in a child process (its memory is not the test process's). */
export async function emulatorProcessForFile() {
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
  return reach(JSON.parse(line) as Reached);
}

/** This run's Vercel sandboxes, as `name:status`. */
export async function runSandboxes(sdk: ReturnType<typeof reach>['sdk']): Promise<string[]> {
  const listed = await Sandbox.list({ ...sdk, tags: { [RUN_LABEL]: runId } });
  return listed.sandboxes.map((s) => `${s.name}:${s.status}`).sort();
}
