/**
 * Network allowlist mode, against servers in containers this test creates on a network of its
 * own: the allowed host:port answers; another port, another host, and a direct connection that
 * bypasses the forwarder do not, even for a process that knows nothing of proxies; connections to
 * other addresses on the allowed port are in the operator's denial log.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSandbox } from '@agentbox/core';
import type { EgressDenial } from '@agentbox/core/backend';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DockerSandbox } from '../src/index.js';
import '../src/index.js';
import { docker, RUN_LABEL, runId, runObjects, TEST_CONFIG, TEST_IMAGE } from './helpers.ts';

const network = `agentbox-test-egress-${runId}`;
const hostA = `srv-a-${runId}`;
const hostB = `srv-b-${runId}`;

async function server(name: string, script: string): Promise<{ container: Docker.Container; ip: string }> {
  const container = await docker.createContainer({
    name,
    Image: TEST_IMAGE,
    Cmd: ['/bin/sh', '-c', script],
    User: '1000:1000',
    Labels: { [RUN_LABEL]: runId },
    HostConfig: { NetworkMode: network },
  });
  await container.start();
  const ip = (await container.inspect()).NetworkSettings.Networks[network]?.IPAddress;
  if (!ip) throw new Error(`${name} got no address`);
  return { container, ip };
}

describe('network allowlist', () => {
  let sandbox: DockerSandbox;
  let a: { container: Docker.Container; ip: string };
  let b: { container: Docker.Container; ip: string };
  const logDir = mkdtempSync(join(tmpdir(), 'agentbox-egress-log-'));
  const logFile = join(logDir, 'denied.log');
  const heard: EgressDenial[] = [];

  beforeAll(async () => {
    await docker.createNetwork({ Name: network, Labels: { [RUN_LABEL]: runId } });
    a = await server(
      hostA,
      'nc -ll -p 8080 -e echo allowed-a-8080 & nc -ll -p 8081 -e echo secret-a-8081 & wait',
    );
    b = await server(hostB, 'nc -ll -p 8080 -e echo secret-b-8080 & wait');
    sandbox = (await openSandbox({
      backend: 'docker',
      policy: { network: { mode: 'allowlist', allow: [`${hostA}:8080`] }, labels: { [RUN_LABEL]: runId } },
      config: {
        ...TEST_CONFIG,
        egressNetwork: network,
        egressLog: logFile,
        onEgressDenied: (d: EgressDenial) => heard.push(d),
      },
    })) as DockerSandbox;
  });

  afterAll(async () => {
    await sandbox?.close();
    rmSync(logDir, { recursive: true, force: true });
    await Promise.all([a, b].map((s) => s?.container.remove({ force: true })));
    await docker
      .getNetwork(network)
      .remove()
      .catch(() => {});
  });

  const connect = (host: string, port: number) =>
    sandbox.exec(['nc', '-w', '3', host, String(port)], { stdin: '', timeoutMs: 15_000 });

  it('is enforced, and the report says how', () => {
    expect(sandbox.enforcement.network.status).toBe('enforced');
    expect(sandbox.enforcement.network.detail).toContain(`${hostA}:8080`);
  });

  it('the allowed host:port answers, by its own name, without any proxy settings', async () => {
    const r = await connect(hostA, 8080);
    expect(r.stdout).toBe('allowed-a-8080\n');
    expect((await sandbox.exec('env')).stdout).not.toMatch(/proxy/i);
  });

  it('another port of the allowed host is refused', async () => {
    const r = await connect(hostA, 8081);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).not.toContain('secret');
  });

  /** The sentinel's report reaches the library a moment after the connection. */
  async function denied(destination: string): Promise<EgressDenial> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = sandbox.egressDenials.find((d) => d.protocol === 'tcp' && d.destination === destination);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(
          `no denial of ${destination} logged; heard: ${JSON.stringify(sandbox.egressDenials)}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('another host is unreachable, by name and by address; the address on an allowed port is logged', async () => {
    const byName = await connect(hostB, 8080);
    expect(byName.exitCode).not.toBe(0);
    const byAddress = await connect(b.ip, 8080);
    expect(byAddress.stdout).not.toContain('secret');
    expect(await denied(`${b.ip}:8080`)).toMatchObject({ sandboxId: sandbox.id });
  });

  it('a direct connection that bypasses the forwarder is refused, even to the allowed host, and logged', async () => {
    const r = await connect(a.ip, 8080);
    expect(r.stdout).toBe('');
    await denied(`${a.ip}:8080`);
  });

  it('off the network, another port is reset at once and ping goes unanswered', async () => {
    const r = await connect(a.ip, 8081);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).not.toContain('secret');
    // A reset from the sandbox's own kernel, not a timeout on a route to nowhere.
    expect(r.stderr).toMatch(/refused/i);
    expect((await sandbox.exec(['ping', '-c', '1', '-W', '1', a.ip])).exitCode).not.toBe(0);
    expect(sandbox.egressDenials.some((d) => d.destination === `${a.ip}:8081`)).toBe(false);
  });

  it('each denial is in the operator’s log file and callback, with time and sandbox id', async () => {
    await denied(`${b.ip}:8080`);
    await sandbox.egressLogged();
    const lines = (await readFile(logFile, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as EgressDenial);
    const mine = lines.filter((d) => d.sandboxId === sandbox.id);
    expect(mine.map((d) => d.destination)).toEqual(expect.arrayContaining([`${b.ip}:8080`, `${a.ip}:8080`]));
    for (const d of mine) expect(Number.isNaN(Date.parse(d.time))).toBe(false);
    expect(heard).toEqual(sandbox.egressDenials);
  });

  it('what listens for the sandbox holds no capability, and the report says what is logged', async () => {
    const status = await sandbox.docker
      .getContainer(`agentbox-${sandbox.id}-egress-listener`)
      .exec({ Cmd: ['cat', '/proc/1/status'], AttachStdout: true, AttachStderr: true });
    const out = await new Promise<string>((resolve, reject) => {
      status.start({}, (error, stream) => {
        if (error || !stream) return reject(error);
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
      });
    });
    expect(out).toMatch(/Uid:\s+1000\s/);
    expect(out).toMatch(/CapEff:\s+0+\n/);
    expect(out).toMatch(/CapPrm:\s+0+\n/);
    expect(sandbox.enforcement.network.detail).toContain('other addresses on those ports are logged');
  });

  it('has no IPv6 and only its internal interface', async () => {
    expect((await sandbox.exec('cat /proc/sys/net/ipv6/conf/all/disable_ipv6')).stdout).toBe('1\n');
    const net = await docker.getNetwork(`agentbox-${sandbox.id}-net`).inspect();
    expect(net.Internal).toBe(true);
    expect(net.Options?.['com.docker.network.bridge.inhibit_ipv4']).toBe('true');
  });

  it('closing removes the forwarders and the network', async () => {
    const other = (await openSandbox({
      backend: 'docker',
      policy: { network: { mode: 'allowlist', allow: [`${hostA}:8080`] }, labels: { [RUN_LABEL]: runId } },
      config: { ...TEST_CONFIG, egressNetwork: network },
    })) as DockerSandbox;
    const mine = async () => (await runObjects()).filter((o) => o.includes(other.id));
    expect((await mine()).some((o) => o.startsWith('network:'))).toBe(true);
    await other.close();
    expect(await mine()).toEqual([]);
  });
});

describe('policy.secrets', () => {
  it('is refused in strict mode before anything is created: the forwarders cannot swap placeholders', async () => {
    const run = `${runId}-secrets`;
    await expect(
      openSandbox({
        backend: 'docker',
        policy: {
          network: { mode: 'allowlist', allow: ['api.example:80'] },
          secrets: [{ env: 'API_TOKEN', from: { env: 'PATH' }, hosts: ['api.example:80'] }],
          labels: { [RUN_LABEL]: run },
        },
        config: TEST_CONFIG,
      }),
    ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE', controls: { secrets: expect.any(String) } });
    expect(await runObjects(run)).toEqual([]);
  });
});
