/**
 * tar.ts against a real tar reader (tar-stream's extract, and BusyBox tar in the test image):
 * names, modes, owners, sizes up to and past a block boundary, the base-256 size field, and a
 * refusal of data that is not the declared size.
 */
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { gather, tarFile, tarHeader } from '../src/tar.ts';

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function* of(...chunks: Uint8Array[]) {
  yield* chunks;
}

const header = {
  name: '.agentbox-0a1b.part',
  mode: 0o640,
  uid: 1000,
  gid: 1001,
  mtime: new Date(1_700_000_000_000),
};

describe('tar.ts', () => {
  for (const size of [0, 1, 511, 512, 513, 3 * 1024 * 1024 + 7]) {
    it(`a file of ${size} bytes reads back whole, with its header`, async () => {
      const data = Buffer.alloc(size).map((_, i) => (i * 31) % 256);
      // Uneven chunks, to cross the gathering's block size both ways.
      const chunks = [data.subarray(0, 100), data.subarray(100, 2_000_000), data.subarray(2_000_000)];
      const archive = await collect(tarFile({ ...header, size }, of(...chunks)));
      expect(archive.length % 512).toBe(0);
      const extract = tarStream.extract();
      Readable.from([archive]).pipe(extract);
      let seen = 0;
      for await (const entry of extract) {
        seen++;
        expect(entry.header).toMatchObject({
          name: header.name,
          size,
          mode: 0o640,
          uid: 1000,
          gid: 1001,
          type: 'file',
        });
        expect(entry.header.mtime?.getTime()).toBe(1_700_000_000_000);
        expect((await collect(entry as AsyncIterable<Uint8Array>)).equals(data)).toBe(true);
      }
      expect(seen).toBe(1);
    });
  }

  it('BusyBox tar lists and extracts it', () => {
    const data = Buffer.from('hello from tar.ts\n');
    return collect(tarFile({ ...header, size: data.length }, of(data))).then((archive) => {
      const image = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';
      const script = 'cat > /tmp/a.tar && tar -tvf /tmp/a.tar && tar -xOf /tmp/a.tar';
      const out = execFileSync('docker', ['run', '--rm', '-i', image, 'sh', '-c', script], {
        input: archive,
      });
      const [listing, content] = [
        out.toString().split('\n')[0],
        out.toString().split('\n').slice(1).join('\n'),
      ];
      expect(listing).toMatch(/^-rw-r----- 1000\/1001 +18 .* \.agentbox-0a1b\.part$/);
      expect(content).toBe('hello from tar.ts\n');
    });
  });

  it('writes a size past 8 GiB in the base-256 form', () => {
    const size = 2 ** 34 + 5;
    const h = tarHeader({ ...header, size });
    expect(h[124]).toBe(0x80);
    expect(h.readBigUInt64BE(128)).toBe(BigInt(size));
    // The checksum still covers the header as written.
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    expect(Number.parseInt(h.toString('ascii', 148, 154), 8)).toBe(sum);
  });

  it('refuses data longer or shorter than declared, and names over 100 bytes', async () => {
    await expect(collect(tarFile({ ...header, size: 3 }, of(Buffer.from('four'))))).rejects.toThrow(/longer/);
    await expect(collect(tarFile({ ...header, size: 5 }, of(Buffer.from('four'))))).rejects.toThrow(
      /ended at 4/,
    );
    expect(() => tarHeader({ ...header, name: 'x'.repeat(101), size: 0 })).toThrow(RangeError);
  });

  it('gathers small chunks into blocks and passes large ones as they are', async () => {
    const sizes: number[] = [];
    const big = new Uint8Array(3000);
    for await (const block of gather(
      of(new Uint8Array(400), new Uint8Array(400), new Uint8Array(400), big, new Uint8Array(10)),
      1000,
    ))
      sizes.push(block.length);
    expect(sizes).toEqual([800, 400, 3000, 10]);
  });
});
