/**
 * `config.runtime`: a sandbox under gVisor (runsc) really runs there (read back from the daemon
 * and seen from inside), the report says so only when it does, strict mode refuses a runtime the
 * daemon lacks or a network gVisor cannot give, and doctor says whether runsc is registered.
 */
import { openSandbox, type Policy } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolationStatus, runtimesFromInfo } from '../src/container-runtime.js';
import { DockerConfigSchema, type DockerSandbox, docker as dockerBackend } from '../src/index.js';
import { docker, RUN_LABEL, runId, runObjects, runscMissing, TEST_CONFIG } from './helpers.ts';

const labels = { [RUN_LABEL]: runId };
const NO_SUCH_RUNTIME = 'agentbox-no-such-runtime';

function open(policy: Policy = {}, config: Record<string, unknown> = {}, extra: { strict?: boolean } = {}) {
  return openSandbox({
    backend: 'docker',
    policy: { ...policy, labels: { ...labels, ...policy.labels } },
    config: { ...TEST_CONFIG, ...config },
    ...extra,
  }) as Promise<DockerSandbox>;
}

describe('the isolation control follows the runtime the container got', () => {
  const daemon = runtimesFromInfo({
    DefaultRuntime: 'runc',
    Runtimes: {
      runc: { path: 'runc' },
      runsc: { path: '/usr/bin/runsc', runtimeArgs: ['--platform=ptrace'] },
    },
  });

  it('enforced as gVisor only when the container runs under a registered runsc', () => {
    const got = isolationStatus('runsc', 'runsc', daemon, 'c0ffee');
    expect(got.status).toBe('enforced');
    expect(got.detail).toContain('gVisor');
    expect(got.detail).toContain('--platform=ptrace');
  });

  it('not supported when the container runs under another runtime than the one asked for', () => {
    expect(isolationStatus('runsc', 'runc', daemon, 'c0ffee')).toMatchObject({ status: 'not-supported' });
    expect(isolationStatus('runsc', '', daemon, 'c0ffee')).toMatchObject({ status: 'not-supported' });
  });

  it('not supported when the daemon no longer lists runsc', () => {
    const without = runtimesFromInfo({ Runtimes: { runc: { path: 'runc' } } });
    expect(isolationStatus(undefined, 'runsc', without, 'c0ffee')).toMatchObject({ status: 'not-supported' });
  });

  it('a plain container shares the host kernel, and says so', () => {
    const got = isolationStatus(undefined, 'runc', daemon, 'c0ffee');
    expect(got.status).toBe('enforced');
    expect(got.detail).toContain('shares the host kernel');
  });
});

describe('config.runtime', () => {
  it('rejects a runtime name that is not a name', async () => {
    const error = await open({}, { runtime: '--privileged' }).catch((e) => e);
    expect(error.code).toBe('INVALID_ARGUMENT');
  });

  it('strict mode refuses a runtime the daemon does not have, before creating anything', async () => {
    const before = await runObjects();
    const error = await open({}, { runtime: NO_SUCH_RUNTIME }).catch((e) => e);
    expect(error.code).toBe('POLICY_NOT_ENFORCEABLE');
    expect(error.controls.isolation).toContain(`no runtime ${NO_SUCH_RUNTIME}`);
    expect(await runObjects()).toEqual(before);
  });

  it('with strict: false it opens under the default runtime and reports isolation as not supported', async () => {
    const sandbox = await open({}, { runtime: NO_SUCH_RUNTIME }, { strict: false });
    try {
      expect(sandbox.runtime).toBe('runc');
      expect(sandbox.enforcement.isolation.status).toBe('not-supported');
      expect(sandbox.enforcement.isolation.detail).toContain(`asked for runtime ${NO_SUCH_RUNTIME}`);
      expect((await sandbox.exec('echo ok')).stdout).toBe('ok\n');
    } finally {
      await sandbox.close();
    }
  });
});

const missing = await runscMissing();
if (missing) console.warn(`runsc tests: SKIPPED: ${missing}`);

describe.skipIf(missing !== undefined)('a sandbox under gVisor (runsc)', () => {
  let sandbox: DockerSandbox;
  beforeAll(async () => {
    sandbox = await open({}, { runtime: 'runsc' });
  }, 120_000);
  afterAll(async () => {
    await sandbox?.close();
  }, 60_000);

  it('runs under runsc, as the daemon and the kernel inside both say', async () => {
    const info = await docker.getContainer(sandbox.containerId).inspect();
    expect((info.HostConfig as { Runtime?: string }).Runtime).toBe('runsc');
    expect(sandbox.runtime).toBe('runsc');
    expect(sandbox.enforcement.isolation.status).toBe('enforced');
    expect(sandbox.enforcement.isolation.detail).toContain('gVisor');
    // gVisor's own kernel log: a runc container would show the host's (or be refused dmesg).
    const r = await sandbox.exec('dmesg');
    expect(r.stdout).toContain('Starting gVisor');
  });

  it('keeps the hardening: read-only root, no capabilities, uid 1000, loopback only', async () => {
    for (const control of [
      'readOnlyRoot',
      'dropCapabilities',
      'nonRootUser',
      'network',
      'limits.pids',
    ] as const)
      expect(sandbox.enforcement[control].status, control).toBe('enforced');
    const r = await sandbox.exec(
      'id -u; touch /etc/x 2>/dev/null && echo root-writable; grep CapEff /proc/self/status; ls /sys/class/net',
    );
    expect(r.stdout).toBe('1000\nCapEff:\t0000000000000000\nlo\n');
  });

  it('limits processes inside gVisor, so that many of them leave the sandbox alive', async () => {
    expect(sandbox.enforcement['limits.pids'].detail).toContain('RLIMIT_NPROC');
    // 60 processes: under a host pids limit of 256 gVisor's own tasks would run out and the sandbox die.
    const r = await sandbox.exec('i=0; while [ $i -lt 60 ]; do sleep 2 & i=$((i+1)); done; ulimit -u; wait');
    expect(r.stdout).toBe('256\n');
    expect((await sandbox.exec('echo alive')).stdout).toBe('alive\n');
  });

  it('has no session shells (gVisor cannot hide them) and says why; commands take the plain path', async () => {
    expect((await sandbox.exec('echo plain')).stdout).toBe('plain\n');
    expect(sandbox.sessions.lastPath).toBe('plain');
    expect(sandbox.sessions.unavailableReason).toMatch(/execute-only/);
  });

  it('checkpoints and rolls back under gVisor', async () => {
    await sandbox.writeFile('kept.txt', 'before\n');
    const checkpoint = await sandbox.checkpoint();
    await sandbox.exec('echo after > kept.txt; echo new > new.txt');
    await sandbox.rollback(checkpoint);
    expect((await sandbox.exec('cat kept.txt; ls')).stdout).toBe('before\nkept.txt\n');
  });
});

describe.skipIf(missing !== undefined)('runsc and the network', () => {
  it('strict mode refuses network open: runsc registered with --network=none gives loopback only', async () => {
    const runtimes = runtimesFromInfo(await docker.info());
    if (!runtimes.runtimes.get('runsc')?.args.includes('--network=none'))
      return console.warn('runsc is registered with a network here: nothing to refuse');
    const before = await runObjects();
    const error = await open({ network: { mode: 'open' } }, { runtime: 'runsc' }).catch((e) => e);
    expect(error.code).toBe('POLICY_NOT_ENFORCEABLE');
    expect(error.controls.network).toContain('--network=none');
    expect(await runObjects()).toEqual(before);
  });
});

describe('doctor', () => {
  it('says whether runsc is registered, and fails a runtime the config asks for that the daemon lacks', async () => {
    const config = DockerConfigSchema.parse(TEST_CONFIG);
    const report = await dockerBackend.doctor!({ config });
    const check = report.checks.find((c) => c.name === 'runtime runsc');
    expect(check?.ok).toBe(true);
    expect(check?.detail).toMatch(missing ? /no runtime runsc/ : /^registered: /);
    const wanted = await dockerBackend.doctor!({
      config: DockerConfigSchema.parse({ ...TEST_CONFIG, runtime: NO_SUCH_RUNTIME }),
    });
    expect(wanted.ok).toBe(false);
    expect(wanted.checks).toContainEqual(
      expect.objectContaining({ name: `runtime ${NO_SUCH_RUNTIME}`, ok: false }),
    );
    expect(wanted.controls.isolation?.status).toBe('not-supported');
  });
});
