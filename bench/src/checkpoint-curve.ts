/**
 * The checkpoint curve on local, docker and ssh: for trees of 1k files/20 MB and 10k files/200 MB
 * (and 100k files/1 GB with BENCH_CHECKPOINT_100K=1; BENCH_CHECKPOINT_SIZES="1000,10000" picks
 * others), the first checkpoint, a checkpoint after one changed file (the median of three, each
 * of another file) and a rollback of two changed files (to the last of those), each beside a warm
 * `cp -a` of the whole tree run through the same channel (the sandbox's own exec) in the same run:
 * the median of three copies, one before the checkpoints and two after.
 * BENCH_CHECKPOINT_BACKENDS="local,docker,ssh" picks backends.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBackend, openSandbox, type SandboxBackend } from '@agentbox/core';
import { report, skip, timeMs } from './harness.js';
import { provision } from './ssh.js';
import { describeTree, loadNote, makeTree, median } from './tree.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** Files and bytes per file: 20 KB files up to 10k, 10 KB at 100k (1 GB). */
function shapes(): [number, number][] {
  const wanted = process.env.BENCH_CHECKPOINT_SIZES
    ? process.env.BENCH_CHECKPOINT_SIZES.split(',').map(Number)
    : [1_000, 10_000, ...(process.env.BENCH_CHECKPOINT_100K === '1' ? [100_000] : [])];
  return wanted.map((files) => [files, files >= 100_000 ? 10_240 : 20_480]);
}

export type Opener = () => Promise<SandboxBackend>;

/** Openers for local, docker and ssh; `dockerImage` is the docker sandboxes' image (the helper keeps the test image). */
export async function openers(dockerImage?: () => string): Promise<Record<string, Opener | undefined>> {
  const local: Opener = async () => {
    await loadBackend('local');
    const root = await mkdtemp(join(tmpdir(), 'agentbox-bench-curve-'));
    const sb = await openSandbox({ backend: 'local', config: { root } });
    const close = sb.close.bind(sb);
    sb.close = async () => {
      await close();
      await rm(root, { recursive: true, force: true });
    };
    return sb;
  };
  let docker: Opener | undefined;
  try {
    execFileSync('bash', [join(repo, 'scripts/provision-docker.sh')], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const image = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';
    const sandboxImage = dockerImage?.() ?? image;
    docker = async () => {
      await loadBackend('docker');
      return openSandbox({
        backend: 'docker',
        config: { image: sandboxImage, helperImage: image, pull: 'never' },
      });
    };
  } catch (error) {
    skip('checkpoint curve (docker)', `no Docker daemon or test image: ${(error as Error).message}`);
  }
  const s = provision();
  const ssh: Opener | undefined = s
    ? async () => {
        await loadBackend('ssh');
        return openSandbox({
          backend: 'ssh',
          config: {
            host: s.host,
            port: s.port,
            user: s.users[0]!,
            auth: { type: 'privateKey' as const, path: s.privateKeyFile },
            knownHostsFile: s.knownHostsFile,
            root: '~/.agentbox/bench',
          },
        });
      }
    : undefined;
  return { local, docker, ssh };
}

export async function run(): Promise<void> {
  const all = await openers();
  const backends = (process.env.BENCH_CHECKPOINT_BACKENDS ?? 'local,docker,ssh').split(',');
  const sizes = shapes();
  console.error(
    `checkpoint curve: ${sizes.map(([f, b]) => describeTree(f, b)).join(', ')} on ${backends.join(', ')}` +
      (process.env.BENCH_CHECKPOINT_100K === '1' ? '' : ' (100k files: BENCH_CHECKPOINT_100K=1)'),
  );
  for (const backend of backends) {
    const open = all[backend];
    if (!open) {
      skip(`checkpoint curve (${backend})`, 'backend not available here');
      continue;
    }
    for (const [files, bytes] of sizes) await curve(backend, open, files, bytes);
  }
}

async function curve(backend: string, open: Opener, files: number, bytes: number): Promise<void> {
  const sb = await open();
  const tree = describeTree(files, bytes);
  try {
    const long = { timeoutMs: 3_600_000 };
    const made = await sb.exec(makeTree('tree', files, bytes), long);
    if (made.exitCode !== 0) throw new Error(`${backend}: making the tree failed: ${made.stderr}`);
    // Warm: one untimed copy, then timed ones, one before the checkpoints and two after them.
    // The baseline is their median: on this machine one copy of the same tree took 0.5 s in one
    // minute and 8 s in another, and a single sample made the ratios a draw.
    await sb.exec('cp -a tree tree-copy && rm -rf tree-copy', long);
    // Every timed step starts with nothing left to write back (`sync` is machine-wide): else a
    // copy or a checkpoint pays for the writeback of the step before it (a 200 MB copy took
    // 0.4 s after a sync and 2-9 s while the last one's blocks were still being written).
    const settled = async <T>(step: () => Promise<T>) => {
      await sb.exec('sync', long);
      return step();
    };
    const copy = async () => {
      const ms = await settled(() => timeMs(() => sb.exec('cp -a tree tree-copy', long)));
      await sb.exec('rm -rf tree-copy', long);
      return ms;
    };
    const copies = [await copy()];
    // Past the incremental stores' racy-mtime window (a file changed within it is hashed again).
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await loadNote(`checkpoint curve ${tree} (${backend})`);
    let first: Awaited<ReturnType<SandboxBackend['checkpoint']>> | undefined;
    const firstMs = await settled(() =>
      timeMs(async () => {
        first = await sb.checkpoint({ label: 'base' });
      }),
    );
    // Three checkpoints of one changed file each, the median kept: one sample was as much the
    // process's first run of that code as the checkpoint's cost.
    const ones: number[] = [];
    let last = first;
    for (const file of ['tree/d7/f701', 'tree/d7/f702', 'tree/d7/f703']) {
      await sb.exec(['sh', '-c', 'echo changed >> "$1"', 'sh', file]);
      ones.push(
        await settled(() =>
          timeMs(async () => {
            last = await sb.checkpoint({ label: 'one change' });
          }),
        ),
      );
    }
    const oneMs = median(ones);
    await sb.exec('echo again >> tree/d8/f801 && rm tree/d9/f901');
    const rollbackMs = await settled(() => timeMs(() => sb.rollback(last!)));
    const back = await sb.exec('test -s tree/d9/f901 && tail -c 6 tree/d8/f801');
    if (back.exitCode !== 0 || back.stdout.includes('again'))
      throw new Error(`${backend}: rollback did not restore the tree (${back.stdout}${back.stderr})`);
    copies.push(await copy(), await copy());
    console.error(
      `checkpoint curve ${tree} (${backend}): cp -a took ${copies.map((ms) => Math.round(ms)).join(', ')} ms; ` +
        `the checkpoints of one change ${ones.map((ms) => Math.round(ms)).join(', ')} ms`,
    );
    const copyMs = median(copies);
    const base = {
      backend,
      unit: 'ms',
      baseline: 'cp -a of the tree (same exec channel), median of 3',
    } as const;
    report({ ...base, bench: `first checkpoint, ${tree}`, value: firstMs, baselineValue: copyMs });
    report({
      ...base,
      bench: `checkpoint ${tree}, 1 changed (median of 3)`,
      value: oneMs,
      baselineValue: copyMs,
    });
    report({ ...base, bench: `rollback ${tree}, 2 changed`, value: rollbackMs, baselineValue: copyMs });
  } finally {
    await sb.close();
  }
}
