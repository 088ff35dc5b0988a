/**
 * Where a sandbox's image comes from and what it must hold: the pull setting against a real
 * registry on 127.0.0.1 (Debian's docker-registry, started by scripts/provision-registry.sh;
 * no other registry is ever reached), pull progress, the typed errors of a failed pull, and the
 * check at open that names what an image lacks.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type OpenProgress, openSandbox } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerConfigSchema, docker as dockerBackend } from '../src/index.js';
import { docker, RUN_LABEL, runId, runObjects, TEST_IMAGE } from './helpers.ts';

const run = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const REGISTRY = `127.0.0.1:${process.env.AGENTBOX_REGISTRY_PORT ?? '5000'}`;
const labels = { [RUN_LABEL]: runId };

/** Image tags this file created; only these are removed afterwards. */
const created = new Set<string>();

async function removeTag(ref: string): Promise<void> {
  await docker
    .getImage(ref)
    .remove({ noprune: false })
    .catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 404) throw error;
    });
}

async function present(ref: string): Promise<boolean> {
  return docker
    .getImage(ref)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

/** `docker push` through the API, to the registry on 127.0.0.1 only. */
async function push(ref: string): Promise<void> {
  if (!ref.startsWith(`${REGISTRY}/`)) throw new Error(`refusing to push outside ${REGISTRY}: ${ref}`);
  // The daemon wants an X-Registry-Auth header even for a registry without auth.
  const stream = await docker.getImage(ref).push({ authconfig: { serveraddress: REGISTRY } });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, events: { error?: string }[]) => {
      const failed = events?.find((e) => e.error);
      if (error || failed) reject(error ?? new Error(failed?.error));
      else resolve();
    }),
  );
}

async function tag(source: string, ref: string): Promise<void> {
  const at = ref.lastIndexOf(':');
  await docker.getImage(source).tag({ repo: ref.slice(0, at), tag: ref.slice(at + 1) });
  created.add(ref);
}

/**
 * An image FROM scratch with a static busybox and only some applets linked: no `setsid` file on
 * PATH (busybox's own shell still runs its applets, but nothing can exec setsid by path).
 */
async function buildWithoutSetsid(ref: string, fillerKiB = 0): Promise<void> {
  const context = await mkdtemp(join(tmpdir(), 'agentbox-nosetsid-'));
  try {
    await copyFile('/bin/busybox', join(context, 'busybox'));
    const applets = ['sh', 'id', 'stat', 'cat', 'chmod', 'mkdir', 'readlink', 'sleep', 'ls', 'echo'];
    await writeFile(
      join(context, 'Dockerfile'),
      [
        'FROM scratch',
        'COPY busybox /bin/busybox',
        'SHELL ["/bin/busybox", "sh", "-euc"]',
        `RUN for a in ${applets.join(' ')}; do /bin/busybox ln -s busybox /bin/$a; done; /bin/busybox mkdir -m 1777 /tmp; echo ${runId} >/run-id`,
        // A layer big enough that the daemon reports its download in bytes.
        ...(fillerKiB ? [`RUN /bin/busybox head -c ${fillerKiB * 1024} /dev/urandom >/filler`] : []),
        'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin',
      ].join('\n'),
    );
    await run('docker', ['build', '-q', '--label', `${RUN_LABEL}=${runId}`, '-t', ref, context]);
    created.add(ref);
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function openFrom(
  image: string,
  pull: 'missing' | 'always' | 'never',
  events: OpenProgress[] = [],
  helperImage = TEST_IMAGE,
) {
  return openSandbox(
    { backend: 'docker', config: { image, helperImage, pull }, policy: { labels } },
    { onProgress: (event) => events.push(event) },
  );
}

afterAll(async () => {
  for (const ref of created) await removeTag(ref);
});

describe('the image check at open', () => {
  const noSetsid = `agentbox-test/nosetsid:${runId}`;
  beforeAll(() => buildWithoutSetsid(noSetsid), 120_000);

  it('an image without setsid is refused with a typed error that names it and says how to fix it', async () => {
    const error = await openFrom(noSetsid, 'never').catch((e) => e);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain(
      `image ${noSetsid} cannot be used as the sandbox image: it has no setsid on PATH. Use the default (busybox:1.37) or agentbox's own image (a Dockerfile ships in @agentbox/backend-docker/image), or install it in ${noSetsid} (setsid comes with util-linux on Debian, Ubuntu and Alpine; busybox has it too)`,
    );
    expect(error.issues).toEqual([`config.image: ${noSetsid} has no setsid`]);
    // Nothing of the refused sandbox is left behind.
    expect(await runObjects()).toEqual([]);
  });

  it('the image agentbox builds from its own Dockerfile passes the check', async () => {
    const sandbox = await openFrom(TEST_IMAGE, 'never');
    try {
      expect((await sandbox.exec('setsid --help 2>&1 | head -1; id -u')).stdout).toMatch(
        /BusyBox[\s\S]*\n1000\n$/,
      );
    } finally {
      await sandbox.close();
    }
  });
});

describe(`the pull setting, against the registry at ${REGISTRY}`, () => {
  let skipped: string | undefined;
  const remote = `${REGISTRY}/agentbox/pull-test:${runId}`;

  beforeAll(async () => {
    try {
      await run('bash', [join(repo, 'scripts/provision-registry.sh')], { env: process.env });
    } catch (error) {
      skipped = `no registry on ${REGISTRY}: ${(error as { stderr?: string }).stderr ?? error}`;
      console.warn(`images.test.ts: SKIPPING the pull tests: ${skipped}`);
      return;
    }
    await tag(TEST_IMAGE, remote);
    await push(remote);
    // Only our tag goes: the image stays as TEST_IMAGE.
    await removeTag(remote);
  }, 180_000);

  it("'never' refuses an image that is not on the daemon, and pulls nothing", async ({ skip }) => {
    if (skipped) skip(skipped);
    const events: OpenProgress[] = [];
    const error = await openFrom(remote, 'never', events).catch((e) => e);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain(`run \`docker pull ${remote}\``);
    expect(events).toEqual([]);
    expect(await present(remote)).toBe(false);
  });

  it("'missing' pulls an image that is not on the daemon, reporting progress, and the sandbox runs it", async ({
    skip,
  }) => {
    if (skipped) skip(skipped);
    expect(await present(remote)).toBe(false);
    const events: OpenProgress[] = [];
    const sandbox = await openFrom(remote, 'missing', events);
    try {
      expect(await present(remote)).toBe(true);
      expect(events[0]).toEqual({ backend: 'docker', stage: 'pull', message: `pulling ${remote}` });
      expect(events.map((e) => e.message)).toContain(
        `pulling ${remote}: Status: Downloaded newer image for ${remote}`,
      );
      expect((await sandbox.exec('echo pulled')).stdout).toBe('pulled\n');
    } finally {
      await sandbox.close();
    }
    // Present now: 'missing' does not ask the registry again.
    const again: OpenProgress[] = [];
    await (await openFrom(remote, 'missing', again)).close();
    expect(again).toEqual([]);
  });

  it("'always' pulls even when the image is on the daemon", async ({ skip }) => {
    if (skipped) skip(skipped);
    if (!(await present(remote))) await tag(TEST_IMAGE, remote);
    const events: OpenProgress[] = [];
    const sandbox = await openFrom(remote, 'always', events, remote);
    await sandbox.close();
    expect(events.map((e) => e.message)).toContain(
      `pulling ${remote}: Status: Image is up to date for ${remote}`,
    );
  });

  it('a pull downloads the layers the daemon lacks, with byte counts; then the image check runs', async ({
    skip,
  }) => {
    if (skipped) skip(skipped);
    const local = `agentbox-test/nosetsid-pull:${runId}`;
    const remoteNoSetsid = `${REGISTRY}/agentbox/nosetsid-test:${runId}`;
    await buildWithoutSetsid(local, 512);
    await tag(local, remoteNoSetsid);
    await push(remoteNoSetsid);
    await removeTag(remoteNoSetsid);
    await removeTag(local);
    expect(await present(remoteNoSetsid)).toBe(false);
    const events: OpenProgress[] = [];
    const error = await openFrom(remoteNoSetsid, 'missing', events).catch((e) => e);
    const downloads = events.filter((e) => / MiB$/.test(e.message));
    expect(downloads.length).toBeGreaterThan(0);
    expect(downloads.at(-1)!.message).toMatch(/^pulling .*: 0\.5 of 0\.5 MiB$/);
    expect(downloads.at(-1)!.current).toBe(downloads.at(-1)!.total);
    expect(downloads.at(-1)!.total).toBeGreaterThan(512 * 1024);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.issues).toEqual([`config.image: ${remoteNoSetsid} has no setsid`]);
  }, 120_000);

  it('an image its registry does not have is NOT_FOUND, naming the image', async ({ skip }) => {
    if (skipped) skip(skipped);
    const missing = `${REGISTRY}/agentbox/pull-test:absent-${runId}`;
    const error = await openFrom(missing, 'missing').catch((e) => e);
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toMatch(
      new RegExp(
        `image ${missing.replace(/[.]/g, '\\.')} was not found in its registry \\(.*manifest unknown`,
      ),
    );
    expect(error.message).toContain('check the name and tag in config.image');
    expect(await runObjects()).toEqual([]);
  });

  it("doctor says an image not on the daemon is pulled at the first open, or refused with pull: 'never'; it pulls nothing", async ({
    skip,
  }) => {
    if (skipped) skip(skipped);
    await removeTag(remote);
    const check = async (image: string, pull: string) => {
      const config = DockerConfigSchema.parse({ image, helperImage: TEST_IMAGE, pull });
      const report = await dockerBackend.doctor!({ config });
      return report.checks.find((c) => c.name === 'sandbox image');
    };
    expect(await check(remote, 'missing')).toEqual({
      name: 'sandbox image',
      ok: true,
      detail: `${remote} is not on the daemon yet: the first open pulls it (pull: 'missing')`,
    });
    expect(await present(remote)).toBe(false);
    expect(await check(remote, 'never')).toMatchObject({
      ok: false,
      detail: expect.stringContaining("pull is 'never'"),
    });
  });

  it('an unreachable registry is SANDBOX_UNAVAILABLE, saying what to check', async () => {
    const ref = `127.0.0.1:${await closedPort()}/agentbox/pull-test:x`;
    const error = await openFrom(ref, 'missing').catch((e) => e);
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(error.message).toContain(`could not pull ${ref}`);
    expect(error.message).toMatch(/connection refused/);
    expect(error.message).toMatch(/is its registry reachable from the daemon\?/);
  });

  it('aborting the open while it pulls stops the pull and leaves nothing behind', async ({ skip }) => {
    if (skipped) skip(skipped);
    await removeTag(remote);
    const controller = new AbortController();
    const opening = openSandbox(
      { backend: 'docker', config: { image: remote, helperImage: TEST_IMAGE }, policy: { labels } },
      {
        signal: controller.signal,
        onProgress: () => controller.abort(new Error('stop')),
      },
    ).catch((e) => e);
    const error = await opening;
    expect(error.code).toBe('ABORTED');
    expect(await runObjects()).toEqual([]);
  });
});
