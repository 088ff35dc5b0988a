/**
 * Density: 50 idle docker sandboxes open at once (BENCH_DENSITY_N to change). Printed: the time
 * to open them all (each to its first exec, all started together) beside starting as many bare
 * `docker run -d IMAGE sleep` containers the same way; host memory per sandbox from the daemon
 * (each container's cgroup, less reclaimable page cache) and its containerd shim's RSS, beside
 * a bare sleeping container's; the library's memory per sandbox (this process, before and after);
 * and exec latency on one sandbox with all of them open beside the same with it alone.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { DockerSandbox } from '@agentbox/backend-docker';
import { loadBackend, openSandbox } from '@agentbox/core';
import { report, skip, timeMs } from './harness.js';
import { loadNote, median } from './tree.js';

const sh = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
const count = Number(process.env.BENCH_DENSITY_N ?? 50);
const MiB = 1024 * 1024;

/**
 * This process's live memory (JS heap in use plus buffers outside it) after a full collection,
 * so garbage does not count as the library's. RSS alone shrinks when the heap is handed back.
 */
function settledRss(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** A container's memory as the daemon counts it, less page cache the kernel can drop. */
async function containerMemory(docker: DockerSandbox['docker'], id: string): Promise<number> {
  const stats = (await docker.getContainer(id).stats({ stream: false })) as {
    memory_stats: { usage?: number; stats?: Record<string, number> };
  };
  const m = stats.memory_stats;
  return (m.usage ?? 0) - (m.stats?.inactive_file ?? m.stats?.total_inactive_file ?? 0);
}

/** RSS of each containerd shim, by the container id on its command line. */
async function shimRss(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      if (!cmd[0]?.includes('containerd-shim')) continue;
      const id = cmd[cmd.indexOf('-id') + 1];
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      if (id) out.set(id, kb * 1024);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

async function execTimes(sb: DockerSandbox, runs = 40): Promise<number> {
  for (let i = 0; i < 5; i++) await sb.exec(['true']);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await timeMs(() => sb.exec(['true'])));
  return median(times);
}

export async function run(): Promise<void> {
  try {
    execFileSync('bash', [join(repo, 'scripts/provision-docker.sh')], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } catch (error) {
    skip('density', `no Docker daemon or test image: ${(error as Error).message}`);
    return;
  }
  await loadBackend('docker');
  const image = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';
  const config = { image, helperImage: image, pull: 'never' as const };
  const open = async () => {
    const sb = (await openSandbox({ backend: 'docker', config })) as DockerSandbox;
    await sb.exec(['true']);
    return sb;
  };
  const sandboxes: DockerSandbox[] = [];
  const bare: string[] = [];
  // Seen under heavy load (load average 25+): a failed exec start ("docker did not start the
  // command") escaping the library uncaught. Said loudly, and the run goes on to its cleanup
  // instead of dying with 50 containers left behind.
  const escaped: unknown[] = [];
  const onEscape = (reason: unknown) => {
    escaped.push(reason);
    console.error(`density: UNCAUGHT ERROR from the library: ${String(reason)}`);
  };
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
  const label = `agentbox-bench-density=${process.pid}`;
  try {
    sandboxes.push(await open());
    const first = sandboxes[0]!;
    await loadNote(`density: 1 open`);
    const aloneMs = await execTimes(first);
    const rssBefore = settledRss();

    await loadNote(`density: opening ${count - 1} more`);
    const openAllMs = await timeMs(async () => {
      const opened = await Promise.allSettled(Array.from({ length: count - 1 }, open));
      for (const r of opened) if (r.status === 'fulfilled') sandboxes.push(r.value);
      const failed = opened.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    });
    const rawAllMs = await timeMs(async () => {
      const ids = await Promise.all(
        Array.from({ length: count - 1 }, () =>
          sh('docker', ['run', '-d', '--label', label, '--network', 'none', image, 'sleep', '3600']),
        ),
      );
      bare.push(...ids.map((r) => r.stdout.trim()));
    });
    // Let the opens settle into idleness before reading memory.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const rssAfter = settledRss();
    await loadNote(`density: ${count} open`);
    const withAllMs = await execTimes(first);

    const docker = first.docker;
    const shims = await shimRss();
    const ours = await Promise.all(sandboxes.map((sb) => containerMemory(docker, sb.containerId)));
    const theirs = await Promise.all(bare.map((id) => containerMemory(docker, id)));
    const perSandbox = median(ours);
    const perBare = median(theirs);
    const shimOurs = median(sandboxes.map((sb) => shims.get(sb.containerId) ?? 0));
    const shimBare = median(bare.map((id) => shims.get(id) ?? 0));
    // Every container the sandboxes run (helpers and forwarders too), by the backend's labels.
    const all = await docker.listContainers({ filters: { label: ['agentbox.sandbox-id'] } });
    const mine = new Set(sandboxes.map((sb) => sb.id));
    const extra = all.filter(
      (c) =>
        mine.has(c.Labels['agentbox.sandbox-id'] ?? '') && !sandboxes.some((sb) => sb.containerId === c.Id),
    );
    console.error(
      `density: ${sandboxes.length} sandboxes, ${extra.length} other containers of theirs; container memory total ${(
        ours.reduce((a, b) => a + b, 0) / MiB
      ).toFixed(
        1,
      )} MiB, shims ${((shimOurs * sandboxes.length) / MiB).toFixed(1)} MiB, library heap+external +${(
        (rssAfter - rssBefore) / MiB
      ).toFixed(1)} MiB`,
    );
    report({
      bench: `open ${count} sandboxes at once, each to its first exec (${count - 1} concurrent after the first)`,
      backend: 'docker',
      value: openAllMs,
      unit: 'ms',
      baseline: `${count - 1} concurrent docker run -d IMAGE sleep`,
      baselineValue: rawAllMs,
    });
    report({
      bench: 'idle sandbox memory (container cgroup less inactive file cache), median',
      backend: 'docker',
      value: perSandbox / MiB,
      unit: 'MiB',
      baseline: 'bare sleeping container',
      baselineValue: perBare / MiB,
    });
    report({
      bench: 'containerd shim RSS per sandbox, median',
      backend: 'docker',
      value: shimOurs / MiB,
      unit: 'MiB',
      baseline: 'shim of a bare sleeping container',
      baselineValue: shimBare / MiB,
    });
    report({
      bench: `library memory per sandbox (this process after a full GC: +heap used and external / ${count - 1})`,
      backend: 'docker',
      value: (rssAfter - rssBefore) / (count - 1) / MiB,
      unit: 'MiB',
      baseline: 'the same with 1 sandbox open (total)',
      baselineValue: rssBefore / MiB,
    });
    report({
      bench: `exec true with ${count} sandboxes open`,
      backend: 'docker',
      value: withAllMs,
      unit: 'ms',
      baseline: 'exec true with 1 open',
      baselineValue: aloneMs,
    });
  } finally {
    await Promise.allSettled(sandboxes.map((sb) => sb.close()));
    process.off('unhandledRejection', onEscape);
    process.off('uncaughtException', onEscape);
    if (escaped.length) console.error(`density: ${escaped.length} uncaught errors (a library bug)`);
    if (bare.length) await sh('docker', ['rm', '-f', ...bare]).catch(() => {});
  }
}
