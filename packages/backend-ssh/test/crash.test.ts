/**
 * The library process SIGKILLed in the middle of a checkpoint and of a rollback on ssh (issue 18),
 * through the shared rounds of scripts/crash.ts. The kill drops the connection, but a script the
 * host already runs goes on: a rollback's restore script outlives its caller, and the re-attach's
 * own rollback must wait for it (core's exec store) rather than interleave with it. Every
 * re-attach finds each finished checkpoint listed and verifying, the one in flight whole or
 * absent, a rollback cut short finished (one state, never a mix), and the sandbox working.
 */
import { openSandbox, type SandboxSpec } from '@agentbox/core';
import { afterAll, describe, expect, it } from 'vitest';
import { crashRounds } from '../../../scripts/crash.ts';
import '../src/index.js';
import { sshCli, sshConfig, TEST_ROOT } from './sshd.ts';

const id = `crash-${process.pid}-${Date.now().toString(36)}`;
/** Whether the sandbox's checkpoint store on the host holds `name` now. */
const exists = (name: string) =>
  sshCli(`[ -e ~/${TEST_ROOT}/${id}/checkpoints/${name} ] && echo yes || echo no`).then(
    (out) => out.trim() === 'yes',
  );
const spec = (keep: boolean): SandboxSpec => ({ backend: 'ssh', id, config: sshConfig({ keep }) });

afterAll(async () => {
  // The last handle is not kept: the sandbox's directory, store and jail go.
  await (await openSandbox(spec(false))).close();
});

describe('the library process SIGKILLed mid-checkpoint and mid-rollback (ssh)', () => {
  it('a re-attach by id finds every finished checkpoint verifiable, the one in flight whole or absent, and a cut rollback finished', async () => {
    const started = Date.now();
    const landed = await crashRounds(
      {
        core: import.meta.resolve('@agentbox/core'),
        testFile: import.meta.url,
        spec: spec(true),
        reattach: () => openSandbox(spec(true)),
        files: 1000,
        // One look at the store: is a restore script of the killed process still running there?
        afterKill: () =>
          sshCli(
            `cd ~/${TEST_ROOT}/${id}/checkpoints && ls -1 restore-owner rollback-pending 2>/dev/null; true`,
          ).then(
            (out) =>
              `in the store: ${out.trim().split('\n').filter(Boolean).join(', ') || 'neither owner nor record'}`,
          ),
      },
      [
        { step: 'c', delayMs: 100 },
        { step: 'b', delayMs: 100 },
        // Once the rollback's restore script runs on the host (its record is in the store).
        { step: 'b', delayMs: 0, until: () => exists('rollback-pending') },
      ],
    );
    console.log(`ssh crash: kills after ${JSON.stringify(landed)}, ${Date.now() - started} ms`);
    expect(landed).toContain('c');
    expect(landed).toContain('b');
  }, 180_000);
});
