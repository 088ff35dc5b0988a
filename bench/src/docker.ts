/**
 * Docker backend, against the local daemon and the locally built test image
 * (scripts/provision-docker.sh, run if needed): a small exec (the fast path) vs the open-shell
 * floor, a bare dockerode exec and the `docker exec` CLI, and the plain path vs a bare
 * dockerode exec; 1,000 small commands from 4 concurrent callers, fast path vs plain path;
 * open-to-first-exec, cold and from a warm pool, vs `docker run --rm`; a 100 MB upload and
 * download vs `docker cp`; checkpoint and rollback of a 200 MB workspace with one file
 * changed vs `docker commit` of the same tree, a raw tar read of it, and a pause + unpause.
 * gVisor (runsc) beside runc is the `isolation` group (docker-gvisor.ts).
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { DockerSandbox } from '@agentbox/backend-docker';
import { loadBackend, openSandbox } from '@agentbox/core';
import { benchPooledCheckpoint, benchStart } from './docker-start.js';
import { type Rounds, report, rounds, skip, timeMs } from './harness.js';

const sh = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** The same 200 MB tree everywhere: 10,000 files of 20 KB in 100 directories. */
const TREE =
  'mkdir -p "$1" && cd "$1" && i=0; while [ $i -lt 100 ]; do mkdir d$i; i=$((i+1)); done; ' +
  'head -c 20971520 /dev/urandom > ../seed; ' +
  'i=0; while [ $i -lt 10000 ]; do dd if=../seed of=d$((i % 100))/f$i bs=20480 count=1 skip=$((i % 1000)) 2>/dev/null; i=$((i+1)); done; rm ../seed';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** One exec straight through dockerode: create, start, read to the end, inspect. */
async function bareExec(sb: DockerSandbox): Promise<void> {
  const exec = await sb.docker.getContainer(sb.containerId).exec({
    Cmd: ['true'],
    AttachStdout: true,
    AttachStderr: true,
    User: '1000:1000',
  });
  const stream = await exec.start({});
  stream.resume();
  await new Promise((resolve) => stream.on('end', resolve));
  await exec.inspect();
}

/**
 * The open-shell floor: a bare hijacked dockerode exec of `sh` in the same container as the
 * same user, kept open. One round is the command started as its own session and process group
 * (`setsid sh -c true`) written raw to that shell and its completion read back, no framing of ours.
 */
async function openFloorShell(sb: DockerSandbox): Promise<Rounds> {
  const exec = await sb.docker.getContainer(sb.containerId).exec({
    Cmd: ['sh'],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    User: '1000:1000',
    Tty: false,
  });
  const stream = (await exec.start({ hijack: true, stdin: true, Tty: false })) as Duplex;
  return rounds(stream, (n) => `setsid sh -c true; echo done-${n}\n`);
}

/** `total` commands from `callers` concurrent callers on one sandbox; returns ops/s. */
async function throughput(sb: DockerSandbox, total: number, callers: number): Promise<number> {
  let next = 0;
  const caller = async () => {
    for (let i = next++; i < total; i = next++) {
      const r = await sb.exec(['echo', String(i)]);
      if (r.stdout !== `${i}\n`) throw new Error(`exec ${i} printed ${JSON.stringify(r.stdout)}`);
    }
  };
  const ms = await timeMs(() => Promise.all(Array.from({ length: callers }, caller)));
  return total / (ms / 1000);
}

export async function run(): Promise<void> {
  try {
    execFileSync('bash', [join(repo, 'scripts/provision-docker.sh')], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } catch (error) {
    skip('docker', `no Docker daemon or test image: ${(error as Error).message}`);
    return;
  }
  // The image provision-docker.sh built (the backend's default is pulled from Docker Hub): never pulled here.
  const defaultImage = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';
  const config = { image: defaultImage, helperImage: defaultImage, pull: 'never' as const };
  const local = await mkdtemp(join(tmpdir(), 'agentbox-bench-docker-'));
  await loadBackend('docker');
  const sb = (await openSandbox({ backend: 'docker', config })) as DockerSandbox;
  // The same backend with the fast path off: one docker exec per command.
  const plainSb = (await openSandbox({
    backend: 'docker',
    config: { ...config, fastPath: false },
  })) as DockerSandbox;
  const floorShell = await openFloorShell(sb);
  try {
    // 1. A small exec, interleaved with its baselines so machine noise hits all alike.
    const ours: number[] = [];
    const floor: number[] = [];
    const plain: number[] = [];
    const bare: number[] = [];
    const cli: number[] = [];
    for (let i = 0; i < 5; i++) {
      await sb.exec(['true']);
      await floorShell.round();
      await plainSb.exec(['true']);
      await bareExec(sb);
      await sh('docker', ['exec', sb.containerId, 'true']);
    }
    const before = sb.sessions.stats;
    for (let i = 0; i < 40; i++) {
      // The cheap ones more often, for a steadier median.
      for (let j = 0; j < 5; j++) {
        ours.push(await timeMs(() => sb.exec(['true'])));
        floor.push(await timeMs(() => floorShell.round()));
      }
      plain.push(await timeMs(() => plainSb.exec(['true'])));
      bare.push(await timeMs(() => bareExec(sb)));
      cli.push(await timeMs(() => sh('docker', ['exec', sb.containerId, 'true'])));
    }
    const after = sb.sessions.stats;
    console.error(
      `exec true: ${after.session - before.session} on a session, ${after.plain - before.plain} on the plain path`,
    );
    report({
      bench: 'exec true',
      backend: 'docker',
      value: median(ours),
      unit: 'ms',
      baseline: 'open-shell floor (setsid sh -c true on an open docker exec shell)',
      baselineValue: median(floor),
    });
    report({
      bench: 'exec true',
      backend: 'docker',
      value: median(ours),
      unit: 'ms',
      baseline: 'bare dockerode exec',
      baselineValue: median(bare),
    });
    report({
      bench: 'exec true, plain path (fastPath: false)',
      backend: 'docker',
      value: median(plain),
      unit: 'ms',
      baseline: 'bare dockerode exec',
      baselineValue: median(bare),
    });
    report({
      bench: 'exec true',
      backend: 'docker',
      value: median(ours),
      unit: 'ms',
      baseline: 'docker exec CLI',
      baselineValue: median(cli),
    });

    // 1b. 1,000 small commands from 4 concurrent callers on one sandbox, fast path vs plain path.
    await throughput(sb, 40, 4);
    await throughput(plainSb, 40, 4);
    const fastStats = sb.sessions.stats;
    const fastOps = await throughput(sb, 1000, 4);
    const fastAfter = sb.sessions.stats;
    const plainOps = await throughput(plainSb, 1000, 4);
    console.error(
      `1000 x echo, 4 callers: ${fastAfter.session - fastStats.session} on a session, ${fastAfter.plain - fastStats.plain} on the plain path`,
    );
    report({
      bench: '1000 x exec echo, 4 concurrent callers',
      backend: 'docker',
      value: fastOps,
      unit: 'ops/s',
      baseline: 'plain path (fastPath: false, one docker exec each)',
      baselineValue: plainOps,
    });

    // 2. Time to a usable sandbox: cold, and from a warm pool (docker-start.ts).
    await benchStart(config);
    await benchPooledCheckpoint(config);

    // 3. 100 MB up and down.
    const data = randomBytes(100 * 1024 * 1024);
    const file = join(local, 'upload.bin');
    await writeFile(file, data);
    const up = await timeMs(() => sb.writeFile('upload.bin', data));
    const cpUp = await timeMs(() => sh('docker', ['cp', file, `${sb.containerId}:/workspace/upload-cp.bin`]));
    const down = await timeMs(() => sb.readFile('upload.bin', { maxBytes: 200 * 1024 * 1024 }));
    const cpDown = await timeMs(() =>
      sh('docker', ['cp', `${sb.containerId}:/workspace/upload-cp.bin`, join(local, 'down.bin')]),
    );
    const mb = data.length / 1024 / 1024;
    report({
      bench: 'upload 100 MB',
      backend: 'docker',
      value: mb / (up / 1000),
      unit: 'MB/s',
      baseline: 'docker cp into the container',
      baselineValue: mb / (cpUp / 1000),
    });
    report({
      bench: 'download 100 MB',
      backend: 'docker',
      value: mb / (down / 1000),
      unit: 'MB/s',
      baseline: 'docker cp out of the container',
      baselineValue: mb / (cpDown / 1000),
    });
    await sb.exec(['rm', '-f', 'upload.bin', 'upload-cp.bin']);

    // 4. Checkpoints of a 200 MB workspace vs docker commit of the same tree in a container's writable layer.
    await sb.exec(['sh', '-c', TREE, 'sh', 'tree'], { timeoutMs: 900_000 });
    const full = await timeMs(() => sb.checkpoint({ label: 'base' }));
    const base = (await sb.listCheckpoints()).at(-1)!;
    await sb.exec('echo changed >> tree/d7/f7');
    const checkpointMs = await timeMs(() => sb.checkpoint({ label: 'one change' }));
    await sb.exec('echo again >> tree/d8/f8');
    const rollbackMs = await timeMs(() => sb.rollback(base));
    // The raw primitives under a checkpoint: reading the whole tree once (tar in the container),
    // and the pause and unpause that freeze the sandbox around it.
    const container = sb.docker.getContainer(sb.containerId);
    const tarMs = await timeMs(() =>
      sh('docker', ['exec', sb.containerId, 'sh', '-c', 'tar -cf - tree | wc -c']),
    );
    const pauseMs = await timeMs(async () => {
      await container.pause();
      await container.unpause();
    });

    const name = `agentbox-bench-commit-${process.pid}`;
    await sh('docker', [
      'run',
      '-d',
      '--name',
      name,
      '--network',
      'none',
      '--user',
      '0',
      defaultImage,
      'sleep',
      '3600',
    ]);
    try {
      await sh('docker', ['exec', name, 'sh', '-c', TREE, 'sh', '/tree'], { maxBuffer: 1 << 26 });
      await sh('docker', ['exec', name, 'sh', '-c', 'echo changed >> /tree/d7/f7']);
      const image = `agentbox-bench-commit:${process.pid}`;
      const commitMs = await timeMs(() => sh('docker', ['commit', name, image]));
      await sh('docker', ['rmi', '-f', image]);
      report({
        bench: 'first checkpoint, 10k files/200 MB',
        backend: 'docker',
        value: full,
        unit: 'ms',
        baseline: 'docker commit (same tree, 1 changed)',
        baselineValue: commitMs,
      });
      report({
        bench: 'checkpoint 10k files/200 MB, 1 changed',
        backend: 'docker',
        value: checkpointMs,
        unit: 'ms',
        baseline: 'docker commit (same tree, 1 changed)',
        baselineValue: commitMs,
      });
      report({
        bench: 'rollback 10k files/200 MB, 2 changed',
        backend: 'docker',
        value: rollbackMs,
        unit: 'ms',
        baseline: 'docker commit (same tree, 1 changed)',
        baselineValue: commitMs,
      });
      for (const [bench, value] of [
        ['checkpoint 10k files/200 MB, 1 changed', checkpointMs],
        ['rollback 10k files/200 MB, 2 changed', rollbackMs],
      ] as const) {
        report({
          bench,
          backend: 'docker',
          value,
          unit: 'ms',
          baseline: 'raw read of the tree (docker exec tar -c | wc -c)',
          baselineValue: tarMs,
        });
        report({
          bench,
          backend: 'docker',
          value,
          unit: 'ms',
          baseline: 'raw freeze (docker pause + unpause)',
          baselineValue: pauseMs,
        });
      }
    } finally {
      await sh('docker', ['rm', '-f', name]);
    }
  } finally {
    floorShell.close();
    await Promise.all([sb.close(), plainSb.close()]);
    await rm(local, { recursive: true, force: true });
  }
}
