/** The Daytona emulator: what it rejects, and the calls the SDK makes, answered by real containers. */
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { INSTANCE_LABEL, startDaytonaEmulator } from '../src/index.js';

const logged: string[] = [];
const emulator = await startDaytonaEmulator({ log: (line) => logged.push(line) });
afterAll(() => emulator.close(), 60_000);
const auth = { authorization: `Bearer ${emulator.apiKey}` };

describe('daytona emulator', () => {
  it('answers an unknown endpoint 501 naming the method and path, and logs it', async () => {
    const res = await fetch(`${emulator.url}/sandbox/x/no-such-thing`, { method: 'PATCH', headers: auth });
    expect(res.status).toBe(501);
    const body = (await res.json()) as { message: string; statusCode: number };
    expect(body.statusCode).toBe(501);
    expect(body.message).toContain('PATCH /sandbox/x/no-such-thing');
    expect(logged.some((line) => line.includes('PATCH /sandbox/x/no-such-thing'))).toBe(true);
  });

  it('refuses a request without the API key', async () => {
    const res = await fetch(`${emulator.url}/sandbox`, { headers: { authorization: 'Bearer wrong' } });
    expect(res.status).toBe(401);
  });

  it('runs a sandbox as a container of its own that the SDK drives, and removes it on delete', async () => {
    const { Daytona } = await import('@daytonaio/sdk');
    const sdk = new Daytona({ apiUrl: emulator.url, apiKey: emulator.apiKey, useDeprecatedPolling: true });
    const sandbox = await sdk.create({ labels: { purpose: 'emulator-test' } });
    try {
      expect(sandbox.state).toBe('started');
      await sandbox.process.createSession('s');
      const result = await sandbox.process.executeSessionCommand('s', {
        command: 'echo out; echo err >&2; exit 7',
      });
      expect([result.exitCode, result.stdout, result.stderr]).toEqual([7, 'out\n', 'err\n']);
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await sandbox.fs.uploadFile(bytes, '/tmp/dir/bytes.bin');
      expect(Buffer.compare(await sandbox.fs.downloadFile('/tmp/dir/bytes.bin'), bytes)).toBe(0);
      await expect(sandbox.fs.downloadFile('/tmp/missing')).rejects.toMatchObject({ statusCode: 404 });
      const docker = new Docker();
      const mine = await docker.listContainers({
        filters: { label: [`io.agentbox.emulator.sandbox=${sandbox.id}`] },
      });
      expect(mine).toHaveLength(1);
      expect(mine[0]!.Labels[INSTANCE_LABEL]).toBeDefined();
      await sandbox.createSnapshot('emulator-test-snap');
      expect((await sdk.snapshot.get('emulator-test-snap')).state).toBe('active');
      const copy = await sdk.create({ snapshot: 'emulator-test-snap' });
      expect((await copy.process.executeCommand('cat /tmp/dir/bytes.bin | wc -c')).result.trim()).toBe('256');
      await copy.delete();
      await sdk.snapshot.delete(await sdk.snapshot.get('emulator-test-snap'));
      await expect(sdk.snapshot.get('emulator-test-snap')).rejects.toMatchObject({ statusCode: 404 });
    } finally {
      await sandbox.delete();
    }
    await expect(sdk.get(sandbox.id)).rejects.toMatchObject({ statusCode: 404 });
    const left = await new Docker().listContainers({
      all: true,
      filters: { label: [`io.agentbox.emulator.sandbox=${sandbox.id}`] },
    });
    expect(left).toEqual([]);
  });

  it('on close, waits for a sandbox still being created and removes it too', async () => {
    // The container is made only after close has begun: a sweep that did not wait would miss it.
    const docker = new Docker();
    const create = docker.createContainer.bind(docker);
    let asked!: () => void;
    const creating = new Promise<void>((resolve) => {
      asked = resolve;
    });
    let made = false;
    docker.createContainer = (async (options: Docker.ContainerCreateOptions) => {
      asked();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const container = await create(options);
      made = true;
      return container;
    }) as typeof docker.createContainer;
    const own = await startDaytonaEmulator({ docker, log: () => {} });
    const request = fetch(`${own.url}/sandbox`, {
      method: 'POST',
      headers: { authorization: `Bearer ${own.apiKey}`, 'content-type': 'application/json' },
      body: '{}',
    }).catch(() => undefined);
    await creating;
    await own.close();
    await request;
    expect(made).toBe(true);
    const left = await new Docker().listContainers({
      all: true,
      filters: { label: [`${INSTANCE_LABEL}=${own.instance}`] },
    });
    expect(left).toEqual([]);
  });
});
