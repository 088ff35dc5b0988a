/** Lifecycle: identity, close (idempotent, final, ends commands), isolation between sandboxes, aborted opens. */
import type { SandboxBackend } from '@agentbox/core';
import { expect } from 'vitest';
import { type CaseContext, defineGroup } from '../case.js';
import {
  eventually,
  expectError,
  expectTyped,
  marker,
  output,
  randomBytes,
  sha256,
  sleep,
  sleepers,
  within,
} from '../helpers.js';

function isolatesProcesses(ctx: CaseContext): boolean {
  return ctx.options.isolatesProcesses ?? ctx.sandbox.capabilities.isolation !== 'none';
}

function isolatesFilesystem(ctx: CaseContext): boolean {
  return ctx.options.isolatesFilesystem ?? ctx.sandbox.capabilities.isolation !== 'none';
}

/** Open with `signal`; an abort must reject with ABORTED, otherwise the sandbox must work and is closed. */
async function openUnderAbort(ctx: CaseContext, signal: AbortSignal): Promise<'aborted' | 'opened'> {
  let sandbox: SandboxBackend;
  try {
    sandbox = await ctx.options.open({ signal });
  } catch (error) {
    expectTyped(error, 'ABORTED', ctx.sandbox.kind);
    return 'aborted';
  }
  try {
    expect(await output(sandbox, 'echo opened')).toBe('opened\n');
  } finally {
    await sandbox.close();
  }
  return 'opened';
}

/** Compare what the backend has before and after `action`, allowing cleanup a short moment to finish. */
async function expectNothingLeft(ctx: CaseContext, action: () => Promise<void>): Promise<void> {
  const leftovers = ctx.options.leftovers;
  if (!leftovers) ctx.skip('no `leftovers` hook given: cannot tell what an aborted open leaves behind');
  const before = new Set(await leftovers());
  await action();
  let extra: string[] = [];
  const clean = await eventually(
    async () => {
      extra = (await leftovers()).filter((item) => !before.has(item));
      return extra.length === 0;
    },
    ctx.ms(3_000),
    200,
  );
  expect(clean, `left behind: ${extra.join(', ')}`).toBe(true);
}

export const lifecycleCases = defineGroup({
  name: 'lifecycle',
  cases: [
    {
      id: 'lifecycle.identity',
      title: 'a sandbox has a kind, an id of its own and an absolute workdir',
      async run(ctx) {
        const { sandbox } = ctx;
        expect(typeof sandbox.kind).toBe('string');
        expect(sandbox.kind.length).toBeGreaterThan(0);
        expect(sandbox.id.length).toBeGreaterThan(0);
        expect(sandbox.workdir.startsWith('/')).toBe(true);
        const other = await ctx.open();
        expect(other.kind).toBe(sandbox.kind);
        expect(other.id).not.toBe(sandbox.id);
      },
    },
    {
      id: 'lifecycle.close-idempotent',
      title: 'close can be called twice and concurrently',
      async run(ctx) {
        const sandbox = await ctx.open();
        await Promise.all([sandbox.close(), sandbox.close(), sandbox.close()]);
        await sandbox.close();
        await sandbox[Symbol.asyncDispose]();
      },
    },
    {
      id: 'lifecycle.use-after-close',
      title: 'after close, exec, spawn, files and checkpoints are SANDBOX_CLOSED',
      async run(ctx) {
        const sandbox = await ctx.open();
        await sandbox.close();
        await expectError(sandbox, 'SANDBOX_CLOSED', () => sandbox.exec('echo no'), 'exec');
        await expectError(sandbox, 'SANDBOX_CLOSED', () => sandbox.spawn(['echo', 'no']).wait());
        await expectError(sandbox, 'SANDBOX_CLOSED', () => sandbox.readFile('f.txt'), 'readFile');
        await expectError(sandbox, 'SANDBOX_CLOSED', () => sandbox.writeFile('f.txt', 'x'), 'writeFile');
        await expectError(sandbox, 'SANDBOX_CLOSED', () => sandbox.checkpoint(), 'checkpoint');
      },
    },
    {
      id: 'lifecycle.async-dispose',
      title: 'Symbol.asyncDispose closes the sandbox',
      async run(ctx) {
        const sandbox = await ctx.open();
        expect(await output(sandbox, 'echo open')).toBe('open\n');
        await sandbox[Symbol.asyncDispose]();
        await expectError(sandbox, 'SANDBOX_CLOSED', () => sandbox.exec('echo no'));
      },
    },
    {
      id: 'lifecycle.close-ends-commands',
      title: 'closing a sandbox stops its running commands (SANDBOX_CLOSED) and ends their processes',
      async run(ctx) {
        const sandbox = await ctx.open();
        const mark = marker();
        const pending = sandbox.exec(`sleep ${mark}`);
        pending.catch(() => {});
        expect(
          await eventually(async () => (await sleepers(sandbox, mark)).length === 1, ctx.ms(5_000)),
        ).toBe(true);
        await within(sandbox.close(), ctx.ms(30_000), 'close()');
        const outcome = await within(
          pending.then(
            () => undefined,
            (error: { code?: string }) => error.code,
          ),
          ctx.ms(10_000),
          'the command running when the sandbox was closed',
        );
        expect(outcome).toBe('SANDBOX_CLOSED');
        // Where processes are shared with the host, the suite's other sandbox can check they are gone.
        if (!isolatesProcesses(ctx)) {
          expect(
            await eventually(async () => (await sleepers(ctx.sandbox, mark)).length === 0, ctx.ms(3_000)),
          ).toBe(true);
        }
      },
    },
    {
      id: 'lifecycle.isolation-files',
      title: 'a file written in one sandbox is not present in another',
      async run(ctx) {
        const { sandbox, rel } = ctx;
        const other = await ctx.open();
        const name = `${rel}/isolated-${sha256(randomBytes(8)).slice(0, 12)}.txt`;
        await sandbox.writeFile(name, 'mine');
        await expectError(other, 'NOT_FOUND', () => other.readFile(name));
        expect((await other.exec(['test', '-e', name])).exitCode).toBe(1);
        await other.writeFile(name, 'theirs');
        expect(await sandbox.readTextFile(name)).toBe('mine');
      },
    },
    {
      id: 'lifecycle.isolation-files-absolute',
      title: "one sandbox cannot read another's files even by absolute path",
      async run(ctx) {
        if (!isolatesFilesystem(ctx))
          ctx.skip(
            `isolation is '${ctx.sandbox.capabilities.isolation}': sandboxes share the host filesystem`,
          );
        const { sandbox, dir } = ctx;
        const other = await ctx.open();
        const secret = `secret-${sha256(randomBytes(8))}`;
        await sandbox.writeFile(`${dir}/secret.txt`, secret);
        const seen = await other.exec(['cat', `${dir}/secret.txt`]);
        expect(seen.stdout).not.toContain(secret);
        const read = await other.readTextFile(`${dir}/secret.txt`).catch(() => '');
        expect(read).not.toContain(secret);
        const listing = await other.exec(['ls', '-a', dir]);
        expect(listing.stdout).not.toContain('secret.txt');
      },
    },
    {
      id: 'lifecycle.isolation-processes',
      title: "one sandbox cannot see another's processes",
      async run(ctx) {
        if (!isolatesProcesses(ctx))
          ctx.skip(
            `isolation is '${ctx.sandbox.capabilities.isolation}': processes are shared with the host`,
          );
        const { sandbox } = ctx;
        const other = await ctx.open();
        const mark = marker();
        const controller = new AbortController();
        const pending = sandbox.exec(`sleep ${mark}`, { signal: controller.signal });
        pending.catch(() => {});
        try {
          // Control: the sandbox running it does see it.
          expect(
            await eventually(async () => (await sleepers(sandbox, mark)).length === 1, ctx.ms(5_000)),
          ).toBe(true);
          expect(await sleepers(other, mark)).toEqual([]);
        } finally {
          controller.abort();
        }
      },
    },
    {
      id: 'lifecycle.open-abort-immediate',
      title: 'an open aborted before it starts rejects with ABORTED and leaves nothing behind',
      async run(ctx) {
        await expectNothingLeft(ctx, async () => {
          const controller = new AbortController();
          controller.abort();
          expect(await openUnderAbort(ctx, controller.signal)).toBe('aborted');
          const racing = new AbortController();
          const opening = openUnderAbort(ctx, racing.signal);
          racing.abort();
          await opening;
        });
      },
    },
    {
      id: 'lifecycle.open-abort-delayed',
      title: 'an open aborted halfway either rejects with ABORTED or opens, and leaves nothing behind',
      timeoutMs: 120_000,
      async run(ctx) {
        await expectNothingLeft(ctx, async () => {
          for (const delayMs of [1, 5, 20, 50, 100, 250]) {
            const controller = new AbortController();
            const opening = openUnderAbort(ctx, controller.signal);
            await sleep(ctx.ms(delayMs));
            controller.abort();
            await opening;
          }
        });
      },
    },
  ],
});
