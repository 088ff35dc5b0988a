/** The Vercel emulator: what it rejects, and the calls the unmodified SDK makes, answered by real containers. */
import { Sandbox, Snapshot } from '@vercel/sandbox';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { startVercelEmulator } from '../src/index.js';

const logged: string[] = [];
const emulator = await startVercelEmulator({ log: (line) => logged.push(line) });
afterAll(() => emulator.close(), 60_000);
const credentials = {
  token: emulator.token,
  teamId: emulator.teamId,
  projectId: emulator.projectId,
  fetch: emulator.fetch,
};

describe('vercel emulator', () => {
  it('answers an unknown endpoint 501 naming the method and path, in Vercel error form, and logs it', async () => {
    const res = await fetch(`${emulator.url}/v2/sandboxes/x/no-such-thing?teamId=${emulator.teamId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${emulator.token}` },
    });
    expect(res.status).toBe(501);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.message).toContain('PATCH /v2/sandboxes/x/no-such-thing');
    expect(logged.some((line) => line.includes('PATCH /v2/sandboxes/x/no-such-thing'))).toBe(true);
  });

  it('refuses a wrong token, and domain allowlists it does not emulate', async () => {
    await expect(Sandbox.create({ ...credentials, token: 'wrong' })).rejects.toMatchObject({
      response: { status: 401 },
    });
    await expect(
      Sandbox.create({ ...credentials, networkPolicy: { allow: ['example.com'] } }),
    ).rejects.toMatchObject({ response: { status: 501 } });
  });

  it('runs commands (NDJSON), files (gzip tar) and a snapshot that stops the session, which the SDK resumes', async () => {
    const sandbox = await Sandbox.create({ ...credentials, tags: { purpose: 'emulator-test' } });
    try {
      const done = await sandbox.runCommand('sh', ['-c', 'echo out; echo err >&2; exit 7']);
      expect([done.exitCode, await done.stdout(), await done.stderr()]).toEqual([7, 'out\n', 'err\n']);
      const detached = await sandbox.runCommand({
        cmd: 'sh',
        args: ['-c', 'sleep 0.2; echo late'],
        detached: true,
      });
      const lines: string[] = [];
      for await (const line of detached.logs()) lines.push(`${line.stream}:${line.data}`);
      expect(lines).toEqual(['stdout:late\n']);
      expect((await detached.wait()).exitCode).toBe(0);
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await sandbox.writeFiles([{ path: '/tmp/dir/bytes.bin', content: bytes }]);
      expect(Buffer.compare((await sandbox.readFileToBuffer({ path: '/tmp/dir/bytes.bin' }))!, bytes)).toBe(
        0,
      );
      expect(await sandbox.readFileToBuffer({ path: '/tmp/missing' })).toBeNull();
      const docker = new Docker();
      const before = await docker.listContainers({
        filters: { label: [`io.agentbox.emulator.sandbox=${sandbox.name}`] },
      });
      expect(before).toHaveLength(1);

      const snapshot = await sandbox.snapshot();
      expect(sandbox.status).toBe('stopped');
      expect((await Snapshot.get({ ...credentials, snapshotId: snapshot.snapshotId })).status).toBe(
        'created',
      );
      // The session is gone (410); the SDK resumes the sandbox into a new one, files kept.
      const again = await sandbox.runCommand('cat', ['/tmp/dir/bytes.bin']);
      expect((await again.stdout()).length).toBeGreaterThan(0);
      expect(sandbox.status).toBe('running');
      expect(sandbox.sourceSnapshotId).toBe(snapshot.snapshotId);

      const copy = await Sandbox.create({
        ...credentials,
        source: { type: 'snapshot', snapshotId: snapshot.snapshotId },
      });
      expect((await (await copy.runCommand('wc', ['-c', '/tmp/dir/bytes.bin'])).stdout()).trim()).toMatch(
        /^256 /,
      );
      await copy.delete();
      await snapshot.delete();
      await expect(Snapshot.get({ ...credentials, snapshotId: snapshot.snapshotId })).rejects.toMatchObject({
        response: { status: 404 },
      });
    } finally {
      await sandbox.delete();
    }
    await expect(Sandbox.get({ ...credentials, name: sandbox.name })).rejects.toMatchObject({
      response: { status: 404 },
    });
    const left = await new Docker().listContainers({
      all: true,
      filters: { label: [`io.agentbox.emulator.sandbox=${sandbox.name}`] },
    });
    expect(left).toEqual([]);
  });
});
