/**
 * The docker backend under gVisor (`runtime: 'runsc'`) beside the same backend under runc, in
 * the same run and interleaved so that machine noise hits both alike: exec `true` (each runtime's
 * default path, and both on the plain path), open to first exec, and a checkpoint and rollback
 * of a 1,000-file workspace with one file changed. Skipped, saying why, where the daemon has no
 * runsc (scripts/provision-gvisor.sh registers it).
 */
import type { DockerSandbox } from '@agentbox/backend-docker';
import { openSandbox } from '@agentbox/core';
import { report, skip, timeMs } from './harness.js';

/** 1,000 files of 4 KB in 10 directories. */
const TREE =
  'mkdir -p "$1" && cd "$1" && head -c 4096000 /dev/urandom > ../seed && i=0; while [ $i -lt 10 ]; do mkdir d$i; i=$((i+1)); done; ' +
  'i=0; while [ $i -lt 1000 ]; do dd if=../seed of=d$((i % 10))/f$i bs=4096 count=1 skip=$i 2>/dev/null; i=$((i+1)); done; rm ../seed';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

type Config = { image: string; helperImage: string; pull: 'never' };

export async function runGvisor(config: Config): Promise<void> {
  const open = (runtime: 'runc' | 'runsc', fastPath = true) =>
    openSandbox({
      backend: 'docker',
      config: { ...config, fastPath, ...(runtime === 'runsc' ? { runtime } : {}) },
    }) as Promise<DockerSandbox>;
  const runc = await open('runc');
  const info = (await runc.docker.info()) as { Runtimes?: Record<string, unknown> };
  if (!info.Runtimes?.runsc) {
    await runc.close();
    skip(
      'docker (runsc)',
      'the docker daemon has no runsc runtime; scripts/provision-gvisor.sh registers it',
    );
    return;
  }
  const sandboxes = { runc, runsc: await open('runsc'), runcPlain: await open('runc', false) };
  try {
    // 1. exec true: runsc takes the plain path (no hidden session shells under gVisor).
    const times = { runc: [] as number[], runsc: [] as number[], runcPlain: [] as number[] };
    for (let i = 0; i < 3; i++) for (const sb of Object.values(sandboxes)) await sb.exec(['true']);
    for (let i = 0; i < 15; i++)
      for (const [name, sb] of Object.entries(sandboxes) as [keyof typeof times, DockerSandbox][])
        times[name].push(await timeMs(() => sb.exec(['true'])));
    console.error(
      `docker (runsc): exec path runsc ${sandboxes.runsc.sessions.lastPath}, runc ${sandboxes.runc.sessions.lastPath}`,
    );
    report({
      bench: 'exec true (each runtime its default path)',
      backend: 'docker (runsc)',
      value: median(times.runsc),
      unit: 'ms',
      baseline: 'docker backend under runc (fast path)',
      baselineValue: median(times.runc),
    });
    report({
      bench: 'exec true, plain path',
      backend: 'docker (runsc)',
      value: median(times.runsc),
      unit: 'ms',
      baseline: 'docker backend under runc, fastPath: false',
      baselineValue: median(times.runcPlain),
    });

    // 2. Open to first exec, alternating runtimes.
    const opens = { runc: [] as number[], runsc: [] as number[] };
    for (let i = 0; i < 3; i++)
      for (const runtime of ['runc', 'runsc'] as const) {
        let sb: DockerSandbox | undefined;
        opens[runtime].push(
          await timeMs(async () => {
            sb = await open(runtime);
            await sb.exec(['true']);
          }),
        );
        await sb?.close();
      }
    report({
      bench: 'open to first exec',
      backend: 'docker (runsc)',
      value: median(opens.runsc),
      unit: 'ms',
      baseline: 'docker backend under runc',
      baselineValue: median(opens.runc),
    });

    // 3. Checkpoint and rollback of the same small tree, one file changed.
    const figures: Record<'runc' | 'runsc', { first: number; checkpoint: number; rollback: number }> = {
      runc: { first: 0, checkpoint: 0, rollback: 0 },
      runsc: { first: 0, checkpoint: 0, rollback: 0 },
    };
    for (const runtime of ['runc', 'runsc'] as const) {
      const sb = sandboxes[runtime];
      await sb.exec(['sh', '-c', TREE, 'sh', 'tree'], { timeoutMs: 600_000 });
      let base: Awaited<ReturnType<DockerSandbox['checkpoint']>> | undefined;
      figures[runtime].first = await timeMs(async () => {
        base = await sb.checkpoint({ label: 'base' });
      });
      await sb.exec('echo changed >> tree/d7/f7');
      figures[runtime].checkpoint = await timeMs(() => sb.checkpoint({ label: 'one change' }));
      await sb.exec('echo again >> tree/d8/f8');
      figures[runtime].rollback = await timeMs(() => sb.rollback(base!));
    }
    for (const [what, bench] of [
      ['first', 'first checkpoint, 1k files/4 MB'],
      ['checkpoint', 'checkpoint 1k files/4 MB, 1 changed'],
      ['rollback', 'rollback 1k files/4 MB, 2 changed'],
    ] as const)
      report({
        bench,
        backend: 'docker (runsc)',
        value: figures.runsc[what],
        unit: 'ms',
        baseline: 'docker backend under runc',
        baselineValue: figures.runc[what],
      });
  } finally {
    await Promise.all(Object.values(sandboxes).map((sb) => sb.close()));
  }
}
