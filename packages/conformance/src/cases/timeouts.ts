/** Timeouts and aborts: the whole tree dies, the error is typed and carries partial output, nothing else is hurt. */
import type { SandboxBackend, TimeoutError } from '@agentbox/core';
import { expect } from 'vitest';
import { defineGroup } from '../case.js';
import {
  eventually,
  expectError,
  marker,
  output,
  processList,
  run,
  waitForOutput,
  within,
} from '../helpers.js';

/** How many processes run exactly `sleep <mark>` for each mark, from one `ps`. */
async function countSleepers(sandbox: SandboxBackend, marks: readonly string[]): Promise<number> {
  const lines = await processList(sandbox);
  return lines.filter((line) =>
    marks.some((m) => new RegExp(`^\\s*\\d+\\s+(\\S*/)?sleep ${m}\\s*$`).test(line)),
  ).length;
}

export const timeoutCases = defineGroup({
  name: 'timeouts',
  cases: [
    {
      id: 'timeouts.kills-tree',
      title:
        'a timeout kills the whole process tree, background children included, and throws TIMEOUT promptly',
      async run({ sandbox, ms }) {
        const marks = [marker(), marker()];
        const started = waitForOutput('started');
        const timeoutMs = ms(3_000);
        const t0 = Date.now();
        const pending = sandbox.exec(`sleep ${marks[0]} & sleep ${marks[1]} & echo started; wait`, {
          timeoutMs,
          onStdout: started.onChunk,
        });
        pending.catch(() => {});
        await within(started.seen, timeoutMs, 'the command printing "started"');
        // Control: while it runs, ps does see both children.
        expect(await eventually(async () => (await countSleepers(sandbox, marks)) === 2, ms(2_000))).toBe(
          true,
        );
        await expectError(sandbox, 'TIMEOUT', () => pending, 'exec');
        // The background children hold stdout open; the timeout must not wait for them to exit on their own.
        expect(Date.now() - t0).toBeLessThan(timeoutMs + ms(5_000));
        expect(await eventually(async () => (await countSleepers(sandbox, marks)) === 0, ms(2_000))).toBe(
          true,
        );
      },
    },
    {
      id: 'timeouts.partial-output',
      title: 'a TimeoutError carries the output produced before the deadline',
      async run({ sandbox, ms }) {
        const timeoutMs = ms(1_500);
        const error = (await expectError(
          sandbox,
          'TIMEOUT',
          () => sandbox.exec(`echo before-timeout; printf err-before >&2; sleep ${marker()}`, { timeoutMs }),
          'exec',
        )) as TimeoutError;
        expect(error.timeoutMs).toBe(timeoutMs);
        expect(error.partial.stdout).toBe('before-timeout\n');
        expect(error.partial.stderr).toBe('err-before');
        expect(new TextDecoder().decode(error.partial.stdoutBytes)).toBe('before-timeout\n');
        expect(error.partial.durationMs).toBeGreaterThanOrEqual(timeoutMs - 50);
      },
    },
    {
      id: 'timeouts.self-signal-not-timeout',
      title: 'a command that kills itself with a signal before the deadline is a result, not a timeout',
      async run({ sandbox, ms }) {
        const term = await sandbox.exec('echo going; kill -TERM $$; sleep 5', { timeoutMs: ms(10_000) });
        expect(term.exitCode).toBe(143);
        expect(term.stdout).toBe('going\n');
        const killed = await sandbox.exec('sleep 0.2; kill -KILL $$', { timeoutMs: ms(10_000) });
        expect(killed.exitCode).toBe(137);
        expect(killed.durationMs).toBeLessThan(ms(5_000));
      },
    },
    {
      id: 'timeouts.next-exec-works',
      title: 'the sandbox stays usable after a timeout',
      async run({ sandbox, dir, ms }) {
        await expectError(sandbox, 'TIMEOUT', () =>
          sandbox.exec(`sleep ${marker()}`, { timeoutMs: ms(500) }),
        );
        expect(await output(sandbox, 'echo still-alive')).toBe('still-alive\n');
        await sandbox.writeFile(`${dir}/after-timeout.txt`, 'ok');
        expect(await sandbox.readTextFile(`${dir}/after-timeout.txt`)).toBe('ok');
      },
    },
    {
      id: 'timeouts.only-that-command',
      title: 'a timeout kills only its own command, not a concurrent one',
      async run({ sandbox, ms }) {
        const survivor = sandbox.exec('sleep 2; echo survivor');
        await expectError(sandbox, 'TIMEOUT', () =>
          sandbox.exec(`sleep ${marker()}`, { timeoutMs: ms(500) }),
        );
        const result = await survivor;
        expect(result.exitCode).toBe(0);
        expect(result.stdout).toBe('survivor\n');
      },
    },
    {
      id: 'timeouts.spawn-timeout',
      title: 'spawn honours timeoutMs: wait() rejects with TIMEOUT and partial output',
      needs: ['spawn'],
      async run({ sandbox, ms }) {
        const handle = sandbox.spawn(`echo partial; sleep ${marker()}`, { timeoutMs: ms(1_000) });
        const error = (await expectError(sandbox, 'TIMEOUT', () => handle.wait())) as TimeoutError;
        expect(error.partial.stdout).toBe('partial\n');
      },
    },
    {
      id: 'timeouts.abort',
      title: 'aborting an exec through its AbortSignal rejects with ABORTED and kills its tree',
      async run({ sandbox, ms }) {
        const mark = marker();
        const controller = new AbortController();
        const started = waitForOutput('started');
        const pending = sandbox.exec(`sleep ${mark} & echo started; wait`, {
          signal: controller.signal,
          onStdout: started.onChunk,
        });
        pending.catch(() => {});
        await within(started.seen, ms(10_000), 'the command printing "started"');
        expect(await eventually(async () => (await countSleepers(sandbox, [mark])) === 1, ms(2_000))).toBe(
          true,
        );
        const t0 = Date.now();
        controller.abort(new Error('the caller changed its mind'));
        await expectError(sandbox, 'ABORTED', () => pending, 'exec');
        expect(Date.now() - t0).toBeLessThan(ms(5_000));
        expect(await eventually(async () => (await countSleepers(sandbox, [mark])) === 0, ms(2_000))).toBe(
          true,
        );
      },
    },
    {
      id: 'timeouts.abort-before-start',
      title: 'an exec with an already aborted signal rejects with ABORTED and never runs',
      async run({ sandbox, dir }) {
        const controller = new AbortController();
        controller.abort();
        await expectError(sandbox, 'ABORTED', () =>
          sandbox.exec(['touch', `${dir}/must-not-exist`], { signal: controller.signal }),
        );
        const check = await sandbox.exec(['test', '-e', `${dir}/must-not-exist`]);
        expect(check.exitCode).toBe(1);
        await run(sandbox, 'true');
      },
    },
  ],
});
