/**
 * writeFile's data as chunks (src/write-data.ts): a Node stream nobody reads yet is read in
 * blocks of STREAM_READ_BYTES, and whatever state a stream is in, every byte arrives once, in
 * order.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAM_READ_BYTES, toChunks } from '../src/write-data.js';

const context = { backend: 'test', operation: 'writeFile' } as const;

async function collect(data: Parameters<typeof toChunks>[0]): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of toChunks(data, context)) chunks.push(Buffer.from(chunk));
  return chunks;
}

let dir: string;
let file: string;
const content = randomBytes(3 * STREAM_READ_BYTES + 5);
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentbox-write-data-'));
  file = join(dir, 'data.bin');
  await writeFile(file, content);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('toChunks on a Node stream', () => {
  it('reads a file stream in blocks of STREAM_READ_BYTES, not its default 64 KiB', async () => {
    const stream = createReadStream(file);
    expect(stream.readableHighWaterMark).toBeLessThan(STREAM_READ_BYTES);
    const chunks = await collect(stream);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
    expect(chunks.map((c) => c.length)).toEqual([STREAM_READ_BYTES, STREAM_READ_BYTES, STREAM_READ_BYTES, 5]);
  });

  it('a stream the caller already began to read gives the rest, once', async () => {
    const stream = createReadStream(file, { start: 7 });
    await new Promise<void>((resolve) => stream.once('readable', () => resolve()));
    const head = stream.read(10) as Buffer;
    expect(head.equals(content.subarray(7, 17))).toBe(true);
    expect(Buffer.concat(await collect(stream)).equals(content.subarray(17))).toBe(true);
  });

  it('a stream that has ended gives what it still holds', async () => {
    const stream = new PassThrough();
    stream.end(Buffer.from('all of it'));
    expect(Buffer.concat(await collect(stream)).toString()).toBe('all of it');
  });

  it('a stream read as text gives its UTF-8 bytes', async () => {
    const stream = createReadStream(file, { end: 99 });
    stream.setEncoding('latin1');
    const text = Buffer.concat(await collect(stream)).toString('utf8');
    expect(Buffer.from(text, 'latin1').equals(content.subarray(0, 100))).toBe(true);
  });

  it('leaves a stream that is already flowing, or in object mode, as it is', async () => {
    const flowing = createReadStream(file);
    let seen = 0;
    flowing.on('data', (chunk) => {
      seen += chunk.length;
    });
    const chunks = await collect(flowing);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThan(STREAM_READ_BYTES);
    expect(seen).toBe(content.length);
    const objects = await collect(Readable.from([Buffer.from('a'), Buffer.from('bc')]));
    expect(objects.map(String)).toEqual(['a', 'bc']);
  });

  it('a chunk that is not bytes is still refused', async () => {
    await expect(collect(Readable.from([Buffer.from('a'), 42]) as never)).rejects.toThrow(
      /has a chunk that is number/,
    );
  });
});
