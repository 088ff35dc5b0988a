/**
 * The Kubernetes API server stand-in over plain HTTP and WebSocket (no client library): what it
 * refuses as an API server would, label selectors and patches, a pod's status as a kubelet
 * writes it, and pods/exec framing under v5 (stdin half-closed, exit on the status channel)
 * and v4 (stdin ends with the socket; the command is not killed).
 */
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startKubernetesEmulator } from '../src/index.js';

const logged: string[] = [];
const emulator = await startKubernetesEmulator({ log: (line) => logged.push(line) });
afterAll(() => emulator.close(), 60_000);
const auth = { authorization: `Bearer ${emulator.token}` };

async function call(method: string, path: string, body?: unknown, type = 'application/json') {
  const res = await fetch(`${emulator.url}${path}`, {
    method,
    headers: { ...auth, 'content-type': type },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: API objects read field by field in assertions
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

const POD = {
  metadata: { name: 'emu-test', labels: { app: 'emu', tier: 'a' } },
  spec: {
    containers: [
      {
        name: 'main',
        image: 'agentbox/busybox:test',
        command: ['/bin/sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"],
        securityContext: { runAsUser: 1000, runAsGroup: 1000, readOnlyRootFilesystem: true },
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
      },
    ],
    volumes: [{ name: 'data', emptyDir: {} }],
  },
};

/** Open an exec socket under one protocol; collect frames by channel until the server closes. */
function exec(argv: string[], protocol: string, input?: { data: string; close: 'frame' | 'socket' }) {
  const query = new URLSearchParams([
    ...argv.map((c) => ['command', c]),
    ['stdin', 'true'],
    ['stdout', 'true'],
    ['stderr', 'true'],
  ] as [string, string][]);
  const ws = new WebSocket(
    `${emulator.url.replace('http', 'ws')}/api/v1/namespaces/default/pods/emu-test/exec?${query}`,
    [protocol],
    {
      headers: auth,
    },
  );
  const frames: Record<number, string> = {};
  return new Promise<{ protocol: string; frames: Record<number, string> }>((resolve, reject) => {
    ws.on('open', () => {
      if (!input) return;
      ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(input.data)]));
      if (input.close === 'frame') ws.send(Buffer.from([255, 0]));
      else ws.close();
    });
    ws.on('message', (data: Buffer) => {
      frames[data[0]!] = (frames[data[0]!] ?? '') + data.subarray(1).toString();
    });
    ws.on('close', () => resolve({ protocol: ws.protocol, frames }));
    ws.on('error', reject);
  });
}

describe('kubernetes emulator', () => {
  it('answers what a real API server would refuse with a Status body; unknown paths are 404 and logged', async () => {
    expect((await fetch(`${emulator.url}/api/v1/namespaces/default/pods`)).status).toBe(401);
    const unknown = await call('GET', '/api/v1/namespaces/default/widgets');
    expect(unknown).toMatchObject({ status: 404, body: { kind: 'Status', reason: 'NotFound' } });
    expect(logged.some((l) => l.includes('/api/v1/namespaces/default/widgets'))).toBe(true);
    const invalid = await call('POST', '/api/v1/namespaces/default/pods', {
      metadata: { name: 'Bad_Name' },
      spec: { containers: [] },
    });
    expect(invalid).toMatchObject({ status: 422, body: { kind: 'Status', reason: 'Invalid' } });
    expect(invalid.body.details.causes.map((c: { field: string }) => c.field)).toEqual([
      'metadata.name',
      'spec.containers',
    ]);
    const secret = { metadata: { name: 's1', labels: { app: 'emu' } }, data: { k: 'dg==' } };
    expect((await call('POST', '/api/v1/namespaces/default/secrets', secret)).status).toBe(201);
    expect(await call('POST', '/api/v1/namespaces/default/secrets', secret)).toMatchObject({
      status: 409,
      body: { reason: 'AlreadyExists' },
    });
    expect((await call('POST', '/api/v1/namespaces/nowhere/secrets', secret)).status).toBe(404);
    const patched = await call(
      'PATCH',
      '/api/v1/namespaces/default/secrets/s1',
      { metadata: { labels: { app: null, x: 'y' } } },
      'application/merge-patch+json',
    );
    expect(patched.body.metadata.labels).toEqual({ x: 'y' });
    expect((await call('DELETE', '/api/v1/namespaces/default/secrets/s1')).status).toBe(200);
    expect((await call('GET', '/api/v1/namespaces/default/secrets/s1')).status).toBe(404);
    const badSecret = await call('POST', '/api/v1/namespaces/default/secrets', {
      metadata: { name: 's2' },
      data: { 'a/b': 'dg==' },
    });
    expect(badSecret).toMatchObject({ status: 422, body: { details: { causes: [{ field: 'data[a/b]' }] } } });
    const big = Buffer.alloc(1024 * 1024 + 1).toString('base64');
    expect(
      (
        await call('POST', '/api/v1/namespaces/default/secrets', {
          metadata: { name: 's3' },
          data: { k: big },
        })
      ).body,
    ).toMatchObject({
      reason: 'Invalid',
      details: { causes: [{ field: 'data', message: expect.stringMatching(/at most 1048576 bytes/) }] },
    });
    const badVolumes = await call('POST', '/api/v1/namespaces/default/pods', {
      metadata: { name: 'bad-volumes' },
      spec: {
        containers: [
          { name: 'main', image: 'x', volumeMounts: [{ name: 's', mountPath: '/s', subPath: '../up' }] },
        ],
        volumes: [
          { name: 's', secret: { items: [{ key: 'k', path: '/abs' }] } },
          { name: 'h', hostPath: { path: '/' } },
        ],
      },
    });
    expect(badVolumes.body.details.causes.map((c: { field: string }) => c.field)).toEqual([
      'spec.volumes[0].secret.secretName',
      'spec.volumes[0].secret.items[0].path',
      'spec.volumes[1]',
      'spec.containers[0].volumeMounts.subPath',
    ]);
  });

  it('runs a pod as Docker containers, writes its status, and serves pods/exec under v5 and v4', async () => {
    expect((await call('POST', '/api/v1/namespaces/default/pods', POD)).status).toBe(201);
    let pod = (await call('GET', '/api/v1/namespaces/default/pods/emu-test')).body;
    for (let i = 0; i < 100 && pod.status?.phase !== 'Running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      pod = (await call('GET', '/api/v1/namespaces/default/pods/emu-test')).body;
    }
    expect(pod.status.phase).toBe('Running');
    expect(pod.status.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
    const listed = await call(
      'GET',
      '/api/v1/namespaces/default/pods?labelSelector=app%3Demu,tier%20in%20(a,b),!missing',
    );
    expect(listed.body.items.map((p: { metadata: { name: string } }) => p.metadata.name)).toEqual([
      'emu-test',
    ]);
    expect(
      (await call('GET', '/api/v1/namespaces/default/pods?labelSelector=app!%3Demu')).body.items,
    ).toEqual([]);

    const v5 = await exec(['sh', '-c', 'cat; echo err >&2; id -u; exit 7'], 'v5.channel.k8s.io', {
      data: 'in',
      close: 'frame',
    });
    expect(v5.protocol).toBe('v5.channel.k8s.io');
    expect(v5.frames[1]).toBe('in1000\n');
    expect(v5.frames[2]).toBe('err\n');
    expect(JSON.parse(v5.frames[3]!)).toMatchObject({
      status: 'Failure',
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '7' }] },
    });
    expect(JSON.parse((await exec(['true'], 'v5.channel.k8s.io')).frames[3]!)).toMatchObject({
      status: 'Success',
    });

    // v4: stdin ends only with the socket (no status comes back), and the command still runs to its end.
    const v4 = await exec(
      ['sh', '-c', 'cat >/data/in.part && mv /data/in.part /data/in'],
      'v4.channel.k8s.io',
      {
        data: 'sent',
        close: 'socket',
      },
    );
    expect(v4.protocol).toBe('v4.channel.k8s.io');
    expect(v4.frames[3]).toBeUndefined();
    let written: string | undefined;
    for (let i = 0; i < 50 && !written; i++) {
      written = (await exec(['sh', '-c', 'cat /data/in 2>/dev/null'], 'v5.channel.k8s.io')).frames[1];
      if (!written) await new Promise((r) => setTimeout(r, 100));
    }
    expect(written).toBe('sent');
    expect((await call('DELETE', '/api/v1/namespaces/default/pods/emu-test')).status).toBe(200);
  });
});
