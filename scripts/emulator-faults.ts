/**
 * The emulator fault tests of issue 18, shared by the backends whose provider is an emulator
 * (vercel, daytona). Two faults, each ending in a typed error within a bound, never a hang:
 * - the emulator SIGKILLed during an exec and started again on the same port: what it held is
 *   gone, so the sandbox is reported unavailable (a clear error, not a wrong answer), close()
 *   still returns, and a new sandbox on the restarted emulator works;
 * - the emulator unreachable for a while (a proxy in front of it stopped, the emulator alive):
 *   calls in flight and calls meanwhile fail typed, and once it answers again the same handle
 *   works with its files and checkpoints.
 */
import { AgentboxError, type SandboxBackend } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmulatorChild, portOf, removeInstance, startEmulatorChild } from './emulator-child.ts';
import { type FaultProxy, startFaultProxy } from './fault-proxy.ts';

/** How long a fault may take to surface as an error: far below any wait that would count as a hang. */
const BOUND_MS = 20_000;

export interface EmulatorFaultOptions<T> {
  backend: string;
  /** The fixture that starts the emulator: args are [port, secret] (0 and "" for any). */
  script: string;
  /** The secret (token, API key) an emulator printed, to start the next one with. */
  secretOf(info: T): string;
  /** Open a sandbox on the emulator that printed `info`, reached at `url`. */
  open(info: T, url: string): Promise<SandboxBackend>;
  /** Why the "unreachable for a while" case is skipped on this backend (a known gap), if it is. */
  unreachableGap?: string;
}

/** The error a promise rejects with, and how long that took (fails if it resolves). */
async function failure(promise: Promise<unknown>): Promise<{ error: AgentboxError; ms: number }> {
  const started = Date.now();
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome, 'expected a rejection, but the call succeeded').toBeDefined();
  expect(outcome, String(outcome)).toBeInstanceOf(AgentboxError);
  return { error: outcome as AgentboxError, ms: Date.now() - started };
}

/** A long command, once it has printed (exec with a callback: not every provider can spawn). */
async function started(sandbox: SandboxBackend): Promise<{ wait(): Promise<unknown> }> {
  let printed!: () => void;
  const ready = new Promise<void>((resolve) => {
    printed = resolve;
  });
  const running = sandbox.exec(['sh', '-c', 'echo started; exec sleep 60'], {
    onStdout: (chunk) => {
      if (Buffer.from(chunk).toString().includes('started')) printed();
    },
  });
  running.catch(() => {});
  await Promise.race([ready, running]);
  return { wait: () => running };
}

export function emulatorFaultSuite<T extends { url: string; instance: string }>(
  options: EmulatorFaultOptions<T>,
): void {
  let emulator: EmulatorChild<T>;
  const killed: string[] = [];
  beforeAll(async () => {
    emulator = await startEmulatorChild<T>(options.script, ['0', '']);
  });
  afterAll(async () => {
    await emulator?.stop();
    for (const instance of killed) await removeInstance(instance);
  }, 60_000);

  describe(`${options.backend}: the emulator killed and restarted, or unreachable for a while`, () => {
    it('killed mid-exec: the exec and the calls while it is down fail SANDBOX_UNAVAILABLE in bound; restarted without its state, the sandbox is reported unavailable; a new one works', async () => {
      const first = emulator;
      const sandbox = await options.open(first.info, first.info.url);
      try {
        await sandbox.writeFile('note.txt', 'before the crash');
        const handle = await started(sandbox);
        killed.push(first.info.instance);
        await first.kill();
        let cut = await failure(handle.wait());
        expect(cut.error.code, cut.error.message).toBe('SANDBOX_UNAVAILABLE');
        expect(cut.ms).toBeLessThan(BOUND_MS);
        cut = await failure(sandbox.exec('true'));
        expect(cut.error.code, cut.error.message).toBe('SANDBOX_UNAVAILABLE');
        expect(cut.ms).toBeLessThan(BOUND_MS);

        emulator = await startEmulatorChild<T>(options.script, [
          String(portOf(first.info.url)),
          options.secretOf(first.info),
        ]);
        // The new emulator never heard of the sandbox: unavailable, said plainly, for every kind of call.
        for (const call of [() => sandbox.exec('true'), () => sandbox.readTextFile('note.txt')]) {
          const gone = await failure(call());
          expect(gone.error.code, gone.error.message).toBe('SANDBOX_UNAVAILABLE');
          expect(gone.ms).toBeLessThan(BOUND_MS);
        }
      } finally {
        // close() returns (the remote sandbox is gone with its emulator; removeInstance clears its container).
        await sandbox.close().catch((error: unknown) => expect(error).toBeInstanceOf(AgentboxError));
      }
      await using fresh = await options.open(emulator.info, emulator.info.url);
      expect((await fresh.exec('echo fresh')).stdout).toBe('fresh\n');
    });

    const gap = options.unreachableGap;
    it.skipIf(gap !== undefined)(
      `unreachable mid-exec and between calls: typed errors in bound, then the same handle recovers its files and checkpoints${gap ? ` (skipped: ${gap})` : ''}`,
      async () => {
        const proxy: FaultProxy = await startFaultProxy({ port: portOf(emulator.info.url) });
        try {
          const url = `http://127.0.0.1:${'port' in proxy.address ? proxy.address.port : 0}`;
          await using sandbox = await options.open(emulator.info, url);
          await sandbox.writeFile('note.txt', 'kept');
          const checkpoint = await sandbox.checkpoint({ label: 'kept' });
          const handle = await started(sandbox);
          await proxy.stop();
          let cut = await failure(handle.wait());
          expect(cut.error.code, cut.error.message).toBe('SANDBOX_UNAVAILABLE');
          expect(cut.ms).toBeLessThan(BOUND_MS);
          cut = await failure(sandbox.exec('true'));
          expect(cut.error.code, cut.error.message).toBe('SANDBOX_UNAVAILABLE');
          expect(cut.ms).toBeLessThan(BOUND_MS);

          await proxy.restart();
          expect((await sandbox.exec('cat note.txt')).stdout).toBe('kept');
          await sandbox.writeFile('note.txt', 'changed');
          await sandbox.rollback(checkpoint);
          expect(await sandbox.readTextFile('note.txt')).toBe('kept');
        } finally {
          // The handle has closed through the proxy (await using); a sandbox a failure left open goes with its emulator.
          await proxy.stop();
        }
      },
    );
  });
}
