/**
 * The local backend under bubblewrap (`isolation: 'bwrap'`) beside the same backend without
 * isolation, in the same run and interleaved: exec `true`, open to first exec, and a checkpoint
 * and rollback of a 1k-file/20 MB workspace with one (then two) files changed. Skipped, saying
 * why, where bubblewrap cannot run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBackend, openSandbox, type SandboxBackend } from '@agentbox/core';
import { report, skip, timeMs } from './harness.js';
import { loadNote, makeTree, median } from './tree.js';

type Isolation = 'none' | 'bwrap';

export async function runBwrap(): Promise<void> {
  await loadBackend('local');
  const roots: string[] = [];
  const open = async (isolation: Isolation): Promise<SandboxBackend> => {
    const root = await mkdtemp(join(tmpdir(), `agentbox-bench-${isolation}-`));
    roots.push(root);
    return openSandbox({ backend: 'local', config: { root, isolation } });
  };
  const opened: SandboxBackend[] = [];
  try {
    let jailed: SandboxBackend;
    try {
      jailed = await open('bwrap');
    } catch (error) {
      skip('local (bwrap)', `isolation 'bwrap' cannot open here: ${(error as Error).message}`);
      return;
    }
    opened.push(jailed);
    const plain = await open('none');
    opened.push(plain);
    const sandboxes: Record<Isolation, SandboxBackend> = { bwrap: jailed, none: plain };
    await loadNote('local (bwrap) exec');

    // 1. exec true, interleaved.
    const times: Record<Isolation, number[]> = { bwrap: [], none: [] };
    for (let i = 0; i < 5; i++) for (const sb of Object.values(sandboxes)) await sb.exec(['true']);
    for (let i = 0; i < 60; i++)
      for (const which of ['bwrap', 'none'] as const)
        times[which].push(await timeMs(() => sandboxes[which].exec(['true'])));
    report({
      bench: 'exec true',
      backend: 'local (bwrap)',
      value: median(times.bwrap),
      unit: 'ms',
      baseline: "local backend, isolation 'none'",
      baselineValue: median(times.none),
    });

    // 2. Open to first exec, alternating.
    const opens: Record<Isolation, number[]> = { bwrap: [], none: [] };
    for (let i = 0; i < 7; i++)
      for (const which of ['bwrap', 'none'] as const) {
        let sb: SandboxBackend | undefined;
        opens[which].push(
          await timeMs(async () => {
            sb = await open(which);
            await sb.exec(['true']);
          }),
        );
        await sb?.close();
      }
    report({
      bench: 'open to first exec',
      backend: 'local (bwrap)',
      value: median(opens.bwrap),
      unit: 'ms',
      baseline: "local backend, isolation 'none'",
      baselineValue: median(opens.none),
    });

    // 3. Checkpoint and rollback of the same tree.
    await loadNote('local (bwrap) checkpoints');
    const figures: Record<Isolation, { first: number; checkpoint: number; rollback: number }> = {
      bwrap: { first: 0, checkpoint: 0, rollback: 0 },
      none: { first: 0, checkpoint: 0, rollback: 0 },
    };
    for (const which of ['bwrap', 'none'] as const) {
      const sb = sandboxes[which];
      const made = await sb.exec(makeTree('tree', 1000, 20_480), { timeoutMs: 600_000 });
      if (made.exitCode !== 0) throw new Error(`making the tree under ${which} failed: ${made.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 2_500)); // past the racy-mtime window
      let base: Awaited<ReturnType<SandboxBackend['checkpoint']>> | undefined;
      figures[which].first = await timeMs(async () => {
        base = await sb.checkpoint({ label: 'base' });
      });
      await sb.exec('echo changed >> tree/d7/f701');
      figures[which].checkpoint = await timeMs(() => sb.checkpoint({ label: 'one change' }));
      await sb.exec('echo again >> tree/d8/f801');
      figures[which].rollback = await timeMs(() => sb.rollback(base!));
    }
    for (const [what, bench] of [
      ['first', 'first checkpoint, 1k files/20 MB'],
      ['checkpoint', 'checkpoint 1k files/20 MB, 1 changed'],
      ['rollback', 'rollback 1k files/20 MB, 2 changed'],
    ] as const)
      report({
        bench,
        backend: 'local (bwrap)',
        value: figures.bwrap[what],
        unit: 'ms',
        baseline: "local backend, isolation 'none'",
        baselineValue: figures.none[what],
      });
  } finally {
    await Promise.allSettled(opened.map((sb) => sb.close()));
    await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
  }
}
