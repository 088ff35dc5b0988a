/** The Modal emulator: what it rejects, and the calls the unmodified SDK makes, answered by real containers. */
import Docker from 'dockerode';
import { ModalClient } from 'modal';
import { afterAll, describe, expect, it } from 'vitest';
import { INSTANCE_LABEL, startModalEmulator } from '../src/index.js';

const logged: string[] = [];
const emulator = await startModalEmulator({ log: (line) => logged.push(line) });
afterAll(() => emulator.close(), 60_000);

/** modal 0.11 takes its endpoint from MODAL_SERVER_URL only, read by the constructor. */
function client(tokenSecret = emulator.tokenSecret): ModalClient {
  process.env.MODAL_SERVER_URL = emulator.url;
  try {
    return new ModalClient({ tokenId: emulator.tokenId, tokenSecret, logLevel: 'error' });
  } finally {
    delete process.env.MODAL_SERVER_URL;
  }
}

const bytes = (text: string) => new TextEncoder().encode(text);

describe('modal emulator', () => {
  it('answers a call it does not emulate UNIMPLEMENTED, naming it, and logs it', async () => {
    const modal = client();
    await expect(modal.secrets.fromName('no-such-secret')).rejects.toMatchObject({
      code: 12,
      details: expect.stringContaining('/modal.client.ModalClient/SecretGetOrCreate'),
    });
    expect(logged).toContain('UNIMPLEMENTED /modal.client.ModalClient/SecretGetOrCreate');
  });

  it('refuses a wrong token secret', async () => {
    const modal = client('as-wrong');
    await expect(modal.apps.fromName('app', { createIfMissing: true })).rejects.toMatchObject({ code: 16 });
  });

  it('runs a sandbox as a container that the SDK execs in, reads and writes, snapshots and terminates', async () => {
    const modal = client();
    const app = await modal.apps.fromName('emulator-test', { createIfMissing: true });
    const image = modal.images.fromRegistry('agentbox/busybox:test');
    const sb = await modal.sandboxes.create(app, image, { tags: { purpose: 'emulator-test' } });
    const docker = new Docker();
    const containers = async () =>
      (
        await docker.listContainers({
          all: true,
          filters: { label: [`${INSTANCE_LABEL}=${emulator.instance}`] },
        })
      ).length;
    let copy: typeof sb | undefined;
    try {
      expect(await containers()).toBe(1);
      const proc = await sb.exec(['sh', '-c', 'cat; printf "\\377err" >&2; exit 7'], { mode: 'binary' });
      const writer = proc.stdin.getWriter();
      await writer.write(new Uint8Array([0, 1, 255]));
      await writer.close();
      expect(await proc.wait()).toBe(7);
      expect([...(await proc.stdout.readBytes())]).toEqual([0, 1, 255]);
      expect([...(await proc.stderr.readBytes())]).toEqual([255, ...bytes('err')]);

      await sb.filesystem.writeBytes(bytes('kept'), '/tmp/dir/file.txt');
      expect(await sb.filesystem.readText('/tmp/dir/file.txt')).toBe('kept');
      await expect(sb.filesystem.readBytes('/tmp/missing')).rejects.toMatchObject({
        name: 'SandboxFilesystemNotFoundError',
      });
      await expect(sb.filesystem.readBytes('/tmp/dir')).rejects.toMatchObject({
        name: 'SandboxFilesystemIsADirectoryError',
      });

      const snapshot = await sb.snapshotFilesystem();
      copy = await modal.sandboxes.create(app, snapshot);
      expect(await copy.filesystem.readText('/tmp/dir/file.txt')).toBe('kept');
      const listed: string[] = [];
      for await (const found of modal.sandboxes.list({
        appId: app.appId,
        tags: { purpose: 'emulator-test' },
      }))
        listed.push(found.sandboxId);
      expect(listed).toEqual([sb.sandboxId]);
    } finally {
      await sb.terminate();
      await copy?.terminate();
    }
    expect(emulator.runningSandboxes()).toEqual([]);
    expect(await containers()).toBe(0);
  });
});
