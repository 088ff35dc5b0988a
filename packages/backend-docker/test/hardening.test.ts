/**
 * What the docker backend promises beyond the conformance suite: the hardening really applied
 * (read back from docker inspect, and seen from inside), strict mode, labels and sweeping,
 * re-attach, and a clear error when the daemon cannot be reached.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openSandbox, type Policy, type SandboxBackend } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DockerConfigSchema,
  type DockerSandbox,
  docker as dockerBackend,
  sweepDocker,
} from '../src/index.js';
import { docker, RUN_LABEL, runId, runObjects, TEST_CONFIG } from './helpers.ts';

const labels = { [RUN_LABEL]: runId };
const run = promisify(execFile);

function open(
  policy: Policy = {},
  config: Record<string, unknown> = {},
  extra: { id?: string; strict?: boolean } = {},
) {
  return openSandbox({
    backend: 'docker',
    policy: { ...policy, labels: { ...labels, ...policy.labels } },
    config: { ...TEST_CONFIG, ...config },
    ...extra,
  }) as Promise<DockerSandbox>;
}

async function out(sandbox: SandboxBackend, cmd: string): Promise<string> {
  const r = await sandbox.exec(cmd);
  if (r.exitCode !== 0) throw new Error(`${cmd} → exit ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

// The execute-only copies of the session shells (hidden-shell.ts), on a tmpfs only uid 65533 writes.
const HIDDEN_SHELL = { '/dev/.agentbox': 'rw,exec,nosuid,size=8m,mode=0711,uid=65533,gid=65533' };

describe('hardened defaults', () => {
  let sandbox: DockerSandbox;
  beforeAll(async () => {
    sandbox = await open();
  });
  afterAll(() => sandbox?.close());

  it('docker inspect shows every default control', async () => {
    const info = await docker.getContainer(sandbox.containerId).inspect();
    const hc = info.HostConfig;
    expect(hc.ReadonlyRootfs).toBe(true);
    expect(hc.Tmpfs).toEqual({ ...HIDDEN_SHELL, '/tmp': 'rw,noexec,nosuid,size=64m' });
    expect(hc.PidsLimit).toBe(256);
    expect(hc.Memory).toBe(2 * 1024 ** 3);
    expect(hc.MemorySwap).toBe(2 * 1024 ** 3);
    expect(hc.NanoCpus).toBe(1.5e9);
    expect(hc.CapDrop).toEqual(['ALL']);
    expect(hc.CapAdd ?? []).toEqual([]);
    expect(hc.SecurityOpt).toContain('no-new-privileges');
    expect(hc.Privileged).toBe(false);
    expect(hc.NetworkMode).toBe('none');
    // PID 1 runs as the hidden shell's owner (it installs it); commands run as 1000:1000 (below).
    expect(info.Config.User).toBe('65533:65533');
    const writable = (info.Mounts ?? []).filter((m) => m.RW).map((m) => [m.Destination, m.Type]);
    expect(writable.sort()).toEqual([
      ['/skills', 'volume'],
      ['/workspace', 'volume'],
    ]);
    expect(info.Config.Labels).toMatchObject({
      'agentbox.creator': 'agentbox',
      'agentbox.sandbox-id': sandbox.id,
      'agentbox.role': 'sandbox',
      [RUN_LABEL]: runId,
    });
    expect(Date.parse(info.Config.Labels['agentbox.created']!)).toBeGreaterThan(Date.now() - 10 * 60_000);
  });

  it('reports each control as enforced, with what the container really got', () => {
    for (const control of [
      'isolation',
      'readOnlyRoot',
      'tmp',
      'limits.pids',
      'limits.memoryMiB',
      'limits.cpus',
      'dropCapabilities',
      'noNewPrivileges',
      'nonRootUser',
      'network',
      'labels',
    ] as const) {
      expect(sandbox.enforcement[control].status, control).toBe('enforced');
    }
    expect(sandbox.enforcement.tmp.detail).toContain('noexec');
    expect(sandbox.enforcement.nonRootUser.detail).toContain('uid 1000');
    expect(sandbox.capabilities).toMatchObject({ isolation: 'container', nonRootUser: true, reattach: true });
  });

  it('from inside: read-only root, noexec /tmp, no capabilities, uid 1000, loopback only, cgroup limits', async () => {
    expect((await sandbox.exec('touch /etc/x')).exitCode).not.toBe(0);
    expect((await sandbox.exec('touch /x')).stderr).toMatch(/Read-only file system/);
    expect(await out(sandbox, 'cp /bin/busybox /tmp/busybox && echo copied')).toBe('copied\n');
    const noexec = await sandbox.exec('/tmp/busybox true');
    expect(noexec.exitCode).toBe(126);
    const status = await out(sandbox, 'grep -E "^(CapEff|CapPrm|CapBnd|NoNewPrivs)" /proc/self/status');
    expect(status).toMatch(/CapEff:\s+0{16}/);
    expect(status).toMatch(/CapBnd:\s+0{16}/);
    expect(status).toMatch(/NoNewPrivs:\s+1/);
    expect(await out(sandbox, 'id -u; id -g')).toBe('1000\n1000\n');
    expect((await out(sandbox, 'ls /sys/class/net')).split(/\s+/).filter(Boolean)).toEqual(['lo']);
    expect(
      (
        await out(sandbox, 'cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; true')
      ).trim(),
    ).toBe('256');
    // The workspace and skills volumes are the writable places, owned by the sandbox user.
    expect(await out(sandbox, 'stat -c "%u %a" /workspace /skills')).toBe('1000 755\n1000 755\n');
    await sandbox.writeFile('/skills/tool.md', 'skill');
    expect(await out(sandbox, 'stat -c %u /skills/tool.md')).toBe('1000\n');
  });

  it('a large write replaces a file through a temporary name, or in place where the folder is not writable', async () => {
    const data = new Uint8Array(300 * 1024).map((_, i) => i % 253);
    await sandbox.exec(
      'mkdir -p locked && printf old > locked/f && chmod 666 locked/f && ln -s locked/f link && chmod 555 locked',
    );
    try {
      // The user may write the file but not its folder: no temporary name there, the file itself is rewritten.
      await sandbox.writeFile('locked/f', data);
      expect(Buffer.from(await sandbox.readFile('locked/f')).equals(Buffer.from(data))).toBe(true);
      // Through a symlink: the file it points to is written, the link stays a link.
      await sandbox.writeFile('link', data.subarray(1000));
      expect((await sandbox.readFile('locked/f')).length).toBe(data.length - 1000);
      expect(await out(sandbox, 'test -L link && echo link; ls -A locked')).toBe('link\nf\n');
    } finally {
      await sandbox.exec('chmod 755 locked && rm -rf locked link');
    }
    await sandbox.writeFile('big.bin', data);
    await sandbox.writeFile('big.bin', data.subarray(7), { mode: 0o600 });
    expect(await out(sandbox, 'stat -c "%s %a %u" big.bin; ls -A | grep -c part || true')).toBe(
      `${data.length - 7} 600 1000\n0\n`,
    );
    await sandbox.exec('rm -f big.bin');
  });

  it('files in /tmp (a tmpfs the archive API cannot see) go through exec, at any size', async () => {
    // 2 MiB is past both one-command sizes, so this takes the large-file path each way.
    const data = new Uint8Array(2 * 1024 * 1024).map((_, i) => (i * 7919) % 251);
    await sandbox.writeFile('/tmp/large.bin', data);
    expect(await out(sandbox, 'wc -c < /tmp/large.bin')).toBe(`${data.length}\n`);
    await sandbox.exec('printf tail >> /tmp/large.bin');
    const back = await sandbox.readFile('/tmp/large.bin');
    expect(back.length).toBe(data.length + 4);
    expect(Buffer.from(back.subarray(0, data.length)).equals(Buffer.from(data))).toBe(true);
    expect(Buffer.from(back.subarray(data.length)).toString()).toBe('tail');
  });

  it('labels every volume it creates, and the checkpoint helper and its store', async () => {
    await sandbox.checkpoint({ label: 'labels' });
    const filters = JSON.stringify({
      label: [`agentbox.sandbox-id=${sandbox.id}`, 'agentbox.creator=agentbox'],
    });
    const volumes = ((await docker.listVolumes({ filters })).Volumes ?? []).map(
      (v) => v.Labels?.['agentbox.role'],
    );
    expect(volumes.sort()).toEqual(['checkpoint-store', 'skills', 'workspace']);
    const containers = await docker.listContainers({ all: true, filters });
    expect(containers.map((c) => c.Labels['agentbox.role']).sort()).toEqual(['checkpoint-helper', 'sandbox']);
    for (const c of containers) expect(c.Labels[RUN_LABEL]).toBe(runId);
  });

  it('keeps the checkpoint store out of the sandbox: not mounted, helper processes invisible', async () => {
    await sandbox.checkpoint();
    const mounts = await out(sandbox, 'cat /proc/mounts');
    expect(mounts).not.toMatch(/store/);
    expect(await out(sandbox, 'ps -o comm | sort -u')).not.toMatch(/find|tar|sha256sum/);
    const helper = await docker.listContainers({
      filters: JSON.stringify({
        label: [`agentbox.sandbox-id=${sandbox.id}`, 'agentbox.role=checkpoint-helper'],
      }),
    });
    const hc = (await docker.getContainer(helper[0]!.Id).inspect()).HostConfig;
    expect(hc.CapDrop).toEqual(['ALL']);
    expect((hc.CapAdd as string[]).sort()).toEqual(['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER']);
    expect(hc.NetworkMode).toBe('none');
    expect(hc.ReadonlyRootfs).toBe(true);
  });

  it('rollback is in place: same handle, same id, same container', async () => {
    await sandbox.writeFile('inplace.txt', 'v1');
    const cp = await sandbox.checkpoint();
    await sandbox.writeFile('inplace.txt', 'v2');
    const before = sandbox.containerId;
    await sandbox.rollback(cp);
    expect(sandbox.containerId).toBe(before);
    expect(await sandbox.readTextFile('inplace.txt')).toBe('v1');
    expect((await docker.getContainer(before).inspect()).State.Running).toBe(true);
  });

  it('checkpoints keep the skills volume with the workspace: a skill deleted by mistake comes back', async () => {
    await sandbox.writeFile('/skills/deploy.md', '# how to deploy\n');
    await sandbox.writeFile('memory.md', 'remember this');
    const listing =
      'cd /skills && stat -c "%n %a %u" . && stat -c "%n %a %u %s %Y" *; cat /workspace/memory.md';
    const before = await out(sandbox, listing);
    const cp = await sandbox.checkpoint({ label: 'skills' });
    await out(
      sandbox,
      'rm /skills/deploy.md && echo junk > /skills/junk.md && echo lost > /workspace/memory.md',
    );
    await sandbox.rollback(cp);
    expect(await out(sandbox, listing)).toBe(before);
    expect(await sandbox.readTextFile('/skills/deploy.md')).toBe('# how to deploy\n');
  });

  it('a sandbox without a skills volume checkpoints its workspace alone', async () => {
    const bare = await open({}, { skillsDir: false });
    try {
      await bare.writeFile('a.txt', 'v1');
      const cp = await bare.checkpoint();
      await bare.writeFile('a.txt', 'v2');
      await bare.rollback(cp);
      expect(await bare.readTextFile('a.txt')).toBe('v1');
      const helper = await docker.listContainers({
        filters: JSON.stringify({
          label: [`agentbox.sandbox-id=${bare.id}`, 'agentbox.role=checkpoint-helper'],
        }),
      });
      const mounts = (await docker.getContainer(helper[0]!.Id).inspect()).Mounts.map((m) => m.Destination);
      expect(mounts.sort()).toEqual(['/state/workspace', '/store']);
    } finally {
      await bare.close();
    }
  });
});

describe('policy settings', () => {
  it('each control is a setting: the container gets what was asked, and the report says so', async () => {
    const sandbox = await open({
      readOnlyRoot: false,
      tmp: { sizeMiB: 16, noexec: false, nosuid: true },
      limits: { pids: 64, memoryMiB: 256, cpus: 0.5 },
      dropCapabilities: false,
      noNewPrivileges: false,
    });
    try {
      const hc = (await docker.getContainer(sandbox.containerId).inspect()).HostConfig;
      expect(hc.ReadonlyRootfs).toBe(false);
      expect(hc.Tmpfs).toEqual({ ...HIDDEN_SHELL, '/tmp': 'rw,exec,nosuid,size=16m' });
      expect([hc.PidsLimit, hc.Memory, hc.NanoCpus]).toEqual([64, 256 * 1024 ** 2, 0.5e9]);
      expect(hc.CapDrop ?? []).toEqual([]);
      expect(hc.SecurityOpt ?? []).not.toContain('no-new-privileges');
      expect(sandbox.enforcement.readOnlyRoot.status).toBe('not-requested');
      expect(sandbox.enforcement.tmp).toMatchObject({
        status: 'enforced',
        detail: expect.stringContaining('size=16m'),
      });
      expect(sandbox.enforcement['limits.pids'].status).toBe('enforced');
      expect(sandbox.enforcement.dropCapabilities.status).toBe('not-requested');
      expect(await out(sandbox, 'cp /bin/busybox /tmp/busybox && /tmp/busybox echo ran')).toBe('ran\n');
    } finally {
      await sandbox.close();
    }
  });

  it('mounts credentials read-only and other mounts as asked', async () => {
    const host = await mkdtemp(join(tmpdir(), 'agentbox-docker-mounts-'));
    try {
      await writeFile(join(host, 'token'), 'secret-token');
      await writeFile(join(host, 'shared.txt'), 'shared');
      await chmod(host, 0o777);
      const sandbox = await open({
        credentials: [{ source: join(host, 'token'), target: '/run/secrets/token' }],
        mounts: [{ source: host, target: '/data', readOnly: false }],
      });
      try {
        expect(await out(sandbox, 'cat /run/secrets/token')).toBe('secret-token');
        expect((await sandbox.exec('echo x > /run/secrets/token')).exitCode).not.toBe(0);
        await sandbox.exec('echo written > /data/from-sandbox.txt');
        expect(await out(sandbox, 'cat /data/from-sandbox.txt')).toBe('written\n');
        expect(sandbox.enforcement.credentials.status).toBe('enforced');
        expect(sandbox.enforcement.mounts.status).toBe('enforced');
      } finally {
        await sandbox.close();
      }
    } finally {
      await rm(host, { recursive: true, force: true });
    }
  });
});

describe('strict mode', () => {
  it('refuses a requested control the container would not get, and leaves nothing behind', async () => {
    const before = await runObjects();
    const error = await open({ nonRootUser: true }, { user: '0:0' }).catch((e) => e);
    expect(error.code).toBe('POLICY_NOT_ENFORCEABLE');
    expect(error.controls).toHaveProperty('nonRootUser');
    expect(error.message).toContain('uid 0');
    expect(await runObjects()).toEqual(before);
  });

  it('refuses allowlist entries it cannot honour before creating anything', async () => {
    const before = await runObjects();
    const error = await open({ network: { mode: 'allowlist', allow: ['10.1.2.3:443'] } }).catch((e) => e);
    expect(error.code).toBe('POLICY_NOT_ENFORCEABLE');
    expect(error.message).toMatch(/IP literal/);
    expect(await runObjects()).toEqual(before);
  });

  it('with strict: false it opens and reports the control as not supported', async () => {
    const sandbox = await open({ nonRootUser: true }, { user: '0:0' }, { strict: false });
    try {
      expect(sandbox.enforcement.nonRootUser.status).toBe('not-supported');
      expect(await out(sandbox, 'id -u')).toBe('0\n');
    } finally {
      await sandbox.close();
    }
  });
});

describe('sweep', () => {
  it('a dry run lists leaked sandboxes by label; a sweep removes them', async () => {
    const leakRun = `leak-${runId}`;
    const only = { labels: { 'agentbox.test-leak': leakRun } };
    // keep: true leaves everything in place on close, as a crashed process would.
    const leaked = await open(only, { keep: true });
    try {
      await leaked.checkpoint();
      await leaked.close();

      const dry = await sweepDocker({ ...only, dryRun: true });
      expect(dry.removed).toEqual([]);
      expect(dry.found.map((o) => `${o.type}:${o.role}`).sort()).toEqual([
        'container:checkpoint-helper',
        'container:sandbox',
        'volume:checkpoint-store',
        'volume:skills',
        'volume:workspace',
      ]);
      expect(new Set(dry.found.map((o) => o.sandboxId))).toEqual(new Set([leaked.id]));
      expect((await docker.getContainer(leaked.containerId).inspect()).State.Running).toBe(true);

      // The test image is agentbox's too, but belongs to no sandbox: a sweep never lists it.
      const everything = await sweepDocker({ dryRun: true });
      expect(everything.found.filter((o) => o.type === 'image')).toEqual([]);
      expect(everything.found.map((o) => o.id)).toEqual(expect.arrayContaining(dry.found.map((o) => o.id)));

      // Too young for an age limit of an hour: nothing matches.
      expect((await sweepDocker({ ...only, olderThanMs: 3_600_000 })).found).toEqual([]);

      const swept = await sweepDocker(only);
      expect(swept.failed).toEqual([]);
      expect(swept.removed.length).toBe(5);
      expect((await sweepDocker({ ...only, dryRun: true })).found).toEqual([]);
      await expect(docker.getContainer(leaked.containerId).inspect()).rejects.toMatchObject({
        statusCode: 404,
      });
    } finally {
      await sweepDocker(only);
    }
  });
});

describe('the docker definition: sweep and doctor', () => {
  it('sweeps a leaked sandbox as one entry with its containers and volumes; doctor finds the daemon and images', async () => {
    const only = { labels: { 'agentbox.test-leak': `definition-${runId}` } };
    const leaked = await open(only, { keep: true });
    await leaked.close();
    const config = DockerConfigSchema.parse(TEST_CONFIG);
    try {
      const dry = await dockerBackend.sweep!({ config, dryRun: true, labels: only.labels });
      expect(dry.location).toMatch(/^on the Docker daemon at /);
      expect(dry.sandboxes).toMatchObject([{ id: leaked.id, removed: false }]);
      expect(dry.sandboxes[0]!.resources.map((r) => r.type).sort()).toEqual([
        'container',
        'volume',
        'volume',
      ]);
      const other = await dockerBackend.sweep!({
        config,
        dryRun: true,
        labels: only.labels,
        ids: ['someone-else'],
      });
      expect(other.sandboxes).toEqual([]);
      const swept = await dockerBackend.sweep!({
        config,
        dryRun: false,
        labels: only.labels,
        ids: [leaked.id],
      });
      expect(swept.sandboxes).toMatchObject([{ id: leaked.id, removed: true }]);
      expect((await sweepDocker({ ...only, dryRun: true })).found).toEqual([]);

      const report = await dockerBackend.doctor!({ config });
      expect(report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(report.checks.map((c) => c.name)).toEqual([
        'daemon',
        'runtime runsc',
        'sandbox image',
        'egress network',
      ]);
      expect(report.controls.readOnlyRoot?.status).toBe('enforced');
      const missing = await dockerBackend.doctor!({
        config: { ...config, image: 'agentbox/no-such-image:x' },
      });
      expect(missing.ok).toBe(false);
      expect(missing.checks).toContainEqual(expect.objectContaining({ name: 'sandbox image', ok: false }));
    } finally {
      await sweepDocker(only);
    }
  });
});

describe('re-attach', () => {
  it('another process opening the id of an existing sandbox finds its container, files and checkpoints', async () => {
    const id = `reattach-${runId}`;
    // The first process opens the sandbox and exits without closing it.
    const fixture = fileURLToPath(new URL('./fixtures/open-and-exit.ts', import.meta.url));
    const { stdout } = await run('npx', ['tsx', fixture, id, runId], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    const first = JSON.parse(stdout.trim().split('\n').at(-1)!) as { checkpoint: string; pid: number };
    expect(first.pid).not.toBe(process.pid);

    const again = await open({}, {}, { id });
    try {
      expect(again.id).toBe(id);
      expect(await again.readTextFile('state.txt')).toBe('changed after the checkpoint');
      expect((await again.listCheckpoints()).map((c) => c.id)).toEqual([first.checkpoint]);
      await again.rollback(first.checkpoint);
      expect(await again.readTextFile('state.txt')).toBe(`written by pid ${first.pid}`);
      expect(again.enforcement.readOnlyRoot.status).toBe('enforced');
      const containers = await docker.listContainers({
        all: true,
        filters: JSON.stringify({ label: [`agentbox.sandbox-id=${id}`, 'agentbox.role=sandbox'] }),
      });
      expect(containers.map((c) => c.Id)).toEqual([again.containerId]);
    } finally {
      await again.close();
    }
    expect((await runObjects()).filter((o) => o.includes(id))).toEqual([]);
  }, 120_000);

  it('a handle re-attached in the same process sees the same container', async () => {
    const id = `reattach-same-${runId}`;
    const first = await open({}, { keep: true }, { id });
    await first.writeFile('x.txt', 'x');
    await first.close();
    const again = await open({}, {}, { id });
    try {
      expect(again.containerId).toBe(first.containerId);
      expect(await again.readTextFile('x.txt')).toBe('x');
    } finally {
      await again.close();
    }
  });
});

describe('daemon and image', () => {
  it('an unreachable daemon is SANDBOX_UNAVAILABLE, saying what to check; nothing falls back', async () => {
    const error = await open({}, { docker: { host: 'unix:///nonexistent' } }).catch((e) => e);
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(error.message).toContain('unix:///nonexistent');
    expect(error.message).toMatch(/dockerd/);
  });

  it('DOCKER_HOST is honoured', async () => {
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = 'unix:///nonexistent';
    try {
      const error = await open().catch((e) => e);
      expect(error.code).toBe('SANDBOX_UNAVAILABLE');
      expect(error.message).toContain('unix:///nonexistent');
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });

  it("a missing image is refused and never pulled with pull: 'never', saying what to do", async () => {
    const error = await open({}, { image: 'agentbox/no-such-image:never' }).catch((e) => e);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(
      /config\.pull is 'never'.*docker pull agentbox\/no-such-image:never.*pull: 'missing'/,
    );
    expect(error.issues).toEqual([
      "config.image: agentbox/no-such-image:never is not on the daemon (pull: 'never')",
    ]);
    await expect(docker.getImage('agentbox/no-such-image:never').inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
  });
});
