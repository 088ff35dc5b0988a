/**
 * One file in or out of the archive API (archive.ts, and TarFileReader in tar.ts).
 *
 * The reader against archives other writers made (tar-stream's pack with PAX records, GNU tar
 * on this host), fed a byte at a time and in uneven chunks, and its refusals. Then both ways a
 * sandbox talks to the real daemon: straight over its unix socket, and through dockerode's
 * client (a daemon on tcp://, here a proxy to the same socket): the same bytes up and back for
 * a file over many reads, an empty file, a long non-ASCII name (a PAX path record), an abort,
 * and a connection cut mid-file, each way.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentboxError, openSandbox } from '@agentbox/core';
import * as tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/fault-proxy.ts';
import '../src/index.js';
import { putArchiveOverSocket, readArchiveFileOverSocket } from '../src/archive.ts';
import type { DockerSandbox } from '../src/index.js';
import { TarFileReader, TarReadError, tarHeader } from '../src/tar.ts';
import { RUN_LABEL, runId, runObjects, TEST_CONFIG } from './helpers.ts';

async function packed(
  entries: { header: Partial<tarStream.Header> & { name: string }; body?: Buffer }[],
): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const { header, body } of entries) {
    if (body) pack.entry(header, body);
    else pack.entry(header);
  }
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const chunk of pack as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Feed `archive` in chunks of `size` bytes; the file's data, or the reader's refusal. */
function readAll(archive: Buffer, chunk: number, maxBytes = 1 << 30): Buffer {
  const reader = new TarFileReader(maxBytes);
  for (let at = 0; at < archive.length && !reader.done; at += chunk)
    reader.push(archive.subarray(at, at + chunk));
  if (!reader.done) throw new Error('the reader wants more than the archive holds');
  return reader.data;
}

/** A header block with its typeflag changed and its checksum made right again. */
function retyped(block: Buffer, type: string): Buffer {
  const out = Buffer.from(block);
  out.write(type, 156, 1, 'latin1');
  out.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of out) sum += byte;
  out.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return out;
}

const header = { mode: 0o644, uid: 1000, gid: 1000, mtime: new Date(1_700_000_000_000) };

describe('TarFileReader', () => {
  const data = randomBytes(3 * 1024 * 1024 + 7);

  it('reads what tar-stream packs, with PAX records before the entry, in any chunking', async () => {
    const name = `${'é'.repeat(80)}/f.bin`;
    const archive = await packed([
      { header: { name, size: data.length, pax: { comment: 'x'.repeat(900) } }, body: data },
    ]);
    // The PAX entry is there: the name is too long and not ASCII for a ustar header.
    expect(archive[156]).toBe('x'.charCodeAt(0));
    for (const chunk of [1, 511, 512, 513, 65_536, archive.length])
      expect(readAll(archive, chunk).equals(data), `chunks of ${chunk}`).toBe(true);
  });

  it('reads what GNU tar writes (pax format, long name) and what tarHeader writes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentbox-tar-'));
    try {
      const name = `${'n'.repeat(150)}.bin`;
      writeFileSync(join(dir, name), data.subarray(0, 70_000));
      const archive = execFileSync('tar', ['--format=pax', '-C', dir, '-cf', '-', name], {
        maxBuffer: 1 << 26,
      });
      expect(readAll(archive, 4096).equals(data.subarray(0, 70_000))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const small = Buffer.from('hello\n');
    const ours = Buffer.concat([
      tarHeader({ ...header, name: 'a', size: small.length }),
      small,
      Buffer.alloc(1530),
    ]);
    expect(readAll(ours, 3).toString()).toBe('hello\n');
    expect(
      readAll(Buffer.concat([tarHeader({ ...header, name: 'e', size: 0 }), Buffer.alloc(1024)]), 512).length,
    ).toBe(0);
  });

  it("takes a PAX record's size over the header's, and the base-256 size form", () => {
    const body = Buffer.from('twelve bytes');
    const records = Buffer.from(`11 size=${body.length}\n`);
    const pax = retyped(tarHeader({ ...header, name: 'PaxHeader', size: records.length }), 'x');
    // The header that follows says 0: the PAX size wins.
    const file = tarHeader({ ...header, name: 'f', size: 0 });
    const archive = Buffer.concat([
      pax,
      records,
      Buffer.alloc(512 - records.length),
      file,
      body,
      Buffer.alloc(1524),
    ]);
    expect(readAll(archive, 100).toString()).toBe('twelve bytes');
    const huge = tarHeader({ ...header, name: 'h', size: 2 ** 34 + 5 });
    expect(huge[124]).toBe(0x80);
    expect(() => readAll(huge, 512, 1 << 20)).toThrow(
      expect.objectContaining({ kind: 'too-large', size: 2 ** 34 + 5 }),
    );
  });

  it('refuses what is not one regular file: a directory, a symlink, an empty archive, a bad checksum, more than maxBytes', async () => {
    const refusal = (archive: Buffer, maxBytes?: number) => {
      try {
        readAll(archive, 512, maxBytes);
      } catch (error) {
        expect(error).toBeInstanceOf(TarReadError);
        return error as TarReadError;
      }
      throw new Error('read without a refusal');
    };
    const dir = await packed([{ header: { name: 'd', type: 'directory' } }]);
    expect(refusal(dir)).toMatchObject({ kind: 'not-a-file', message: 'not a regular file (directory)' });
    const link = await packed([{ header: { name: 'l', type: 'symlink', linkname: '/etc/passwd' } }]);
    expect(refusal(link).message).toBe('not a regular file (symlink)');
    expect(refusal(Buffer.alloc(1024)).kind).toBe('empty');
    const bad = tarHeader({ ...header, name: 'f', size: 1 });
    bad[0] = 'g'.charCodeAt(0);
    expect(refusal(Buffer.concat([bad, Buffer.alloc(1536)])).kind).toBe('malformed');
    const file = await packed([{ header: { name: 'f', size: 2000 }, body: Buffer.alloc(2000) }]);
    expect(refusal(file, 1999)).toMatchObject({ kind: 'too-large', size: 2000 });
  });
});

describe('docker files through the archive API, both transports', () => {
  let proxy: FaultProxy;
  let dir: string;
  const sandboxes: Record<string, DockerSandbox> = {};
  const open = (docker: Record<string, unknown>) =>
    openSandbox({
      backend: 'docker',
      config: { ...TEST_CONFIG, docker },
      policy: { labels: { [RUN_LABEL]: runId } },
    }) as Promise<DockerSandbox>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agentbox-archive-'));
    proxy = await startFaultProxy({ path: '/var/run/docker.sock' });
    const port = (proxy.address as { port: number }).port;
    // The unix one through a proxy too, so that the cut below reaches it.
    const unixProxy = await startFaultProxy(
      { path: '/var/run/docker.sock' },
      { path: join(dir, 'docker.sock') },
    );
    proxies.push(proxy, unixProxy);
    sandboxes.unix = await open({ socketPath: join(dir, 'docker.sock') });
    sandboxes.tcp = await open({ host: `tcp://127.0.0.1:${port}` });
  });

  const proxies: FaultProxy[] = [];
  afterAll(async () => {
    for (const sandbox of Object.values(sandboxes)) await sandbox.close();
    for (const p of proxies) await p.stop();
    rmSync(dir, { recursive: true, force: true });
    expect(await runObjects()).toEqual([]);
  });

  for (const transport of ['unix', 'tcp'] as const) {
    it(`${transport}: the same bytes back, for a large file, an empty one and a long non-ASCII name`, async () => {
      const sandbox = sandboxes[transport]!;
      const big = randomBytes(24 * 1024 * 1024 + 3);
      await sandbox.writeFile('big.bin', big);
      for (let i = 0; i < 3; i++)
        expect(Buffer.from(await sandbox.readFile('big.bin')).equals(big)).toBe(true);
      await sandbox.exec('touch empty');
      expect((await sandbox.readFile('empty')).length).toBe(0);
      const name = `${'ü'.repeat(60)}-${'x'.repeat(60)}.txt`;
      const text = randomBytes(2 * 1024 * 1024).toString('base64');
      await sandbox.writeFile(name, text);
      expect(await sandbox.readTextFile(name)).toBe(text);
    });

    it(`${transport}: an abort ends a read with ABORTED, and the next read works`, async () => {
      const sandbox = sandboxes[transport]!;
      await sandbox.exec('head -c 67108864 /dev/zero > zeros.bin');
      const controller = new AbortController();
      // The outcome as a length or an error: a 64 MiB array in a failed expectation's diff would not fit the heap.
      const reading = sandbox.readFile('zeros.bin', { signal: controller.signal }).then(
        (data) => data.length,
        (error: unknown) => error,
      );
      setTimeout(() => controller.abort(), 20);
      expect(await reading).toMatchObject({ code: 'ABORTED' });
      expect((await sandbox.readFile('zeros.bin')).length).toBe(67_108_864);
    });
  }

  it('unix: a connection cut mid-file is SANDBOX_UNAVAILABLE, never a short file', async () => {
    const sandbox = sandboxes.unix!;
    await sandbox.exec('head -c 268435456 /dev/zero > quarter.bin');
    const proxy = proxies[1]!;
    const before = proxy.accepted;
    const reading = sandbox.readFile('quarter.bin', { maxBytes: 2 ** 29 }).then(
      (data) => data.length,
      (error: unknown) => error,
    );
    // The check runs on the open session shell; the read's own connection is the next one the
    // proxy accepts. 256 MiB take a few hundred ms: 20 ms after it opens, the file is coming.
    for (let i = 0; i < 1000 && proxy.accepted === before; i++) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 20));
    proxy.cut();
    const outcome = await reading;
    expect(outcome).toBeInstanceOf(AgentboxError);
    expect((outcome as AgentboxError).code).toBe('SANDBOX_UNAVAILABLE');
    // From the archive read (an early end, or a reset), not from the check before it.
    expect((outcome as AgentboxError).message).toMatch(/archive of \S*quarter\.bin early|ECONNRESET|EPIPE/);
  });

  it("unix: the daemon's refusals come back typed, with its message", async () => {
    const { containerId } = sandboxes.unix!;
    const socket = join(dir, 'docker.sock');
    const read = { path: '/workspace/no-such-file', name: 'no-such-file', maxBytes: 1024, signal: undefined };
    const missing = await readArchiveFileOverSocket(socket, 'test', containerId, {
      ...read,
      context: {},
    }).catch((error: unknown) => error);
    expect(missing).toMatchObject({ code: 'NOT_FOUND' });
    expect((missing as Error).message).toMatch(/no-such-file/);
    async function* empty() {}
    const refused = await putArchiveOverSocket(
      socket,
      containerId,
      '/no/such/dir',
      empty(),
      1024,
      undefined,
    ).catch((error: unknown) => error);
    expect(refused).toMatchObject({ statusCode: 404 });
    expect((refused as Error).message).toMatch(/^\(HTTP code 404\) Could not find the file \/no\/such\/dir/);
  });

  it('unix: a connection cut mid-upload is SANDBOX_UNAVAILABLE', { timeout: 20_000 }, async () => {
    console.log('TEST START');
    const sandbox = sandboxes.unix!;
    const chunk = Buffer.alloc(1024 * 1024, 7);
    // The data is pulled only by the upload itself: its 16th MiB is asked for mid-upload.
    async function* quarter() {
      for (let i = 0; i < 256; i++) {
        if (i === 16) proxies[1]!.cut();
        yield chunk;
      }
    }
    const outcome = await sandbox.writeFile('up.bin', quarter(), { size: 256 * chunk.length }).then(
      () => 'written',
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(AgentboxError);
    expect((outcome as AgentboxError).code).toBe('SANDBOX_UNAVAILABLE');
  });
});
