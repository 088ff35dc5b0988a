/**
 * Packs of the tree store: the new objects of one checkpoint, written one after another into a
 * single file (`<id>.pack`), with an index of where each lies (`<id>.idx`). A first checkpoint of
 * 10,000 small files then creates two files in the store, not 10,000: creating a file can cost
 * more than copying its content (0.4 ms per file on this project's test machine, against 30 ms
 * for 20 MB written as one file).
 *
 * A pack is written under a temporary name, flushed, renamed into place, and only then is its
 * index written (flushed, renamed, the directory flushed): an index never names bytes that did
 * not last. A pack with no index is what a crash leaves; the store removes it once stale.
 * Pack ids sort by creation time, and where two packs hold the same object the later one is used.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { readdirOrNone, TEMP_PREFIX, writeAtomic } from './durable.js';
import { SHA256 } from './engine/manifest.js';

/** `pack-<ms since the epoch, base 36>-<8 hex>`: sorts by creation time. */
export const PACK_ID = /^pack-[0-9a-z]{8,}-[0-9a-f]{8}$/;

/** Where an object lies in a pack. */
export interface Packed {
  pack: string;
  offset: number;
  length: number;
}

export function packFile(dir: string, pack: string): string {
  return join(dir, `${pack}.pack`);
}

export function indexFile(dir: string, pack: string): string {
  return join(dir, `${pack}.idx`);
}

/**
 * Every pack of `dir` with a readable index, oldest first, and its objects. An index that does
 * not parse is left out: the objects it named read as missing, never as other bytes.
 */
export async function readPacks(dir: string): Promise<Map<string, IndexedObject[]>> {
  const packs = new Map<string, IndexedObject[]>();
  for (const name of (await readdirOrNone(dir)).sort()) {
    const pack = name.slice(0, -4);
    if (!name.endsWith('.idx') || !PACK_ID.test(pack)) continue;
    let text: string;
    try {
      text = await fs.readFile(join(dir, name), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const objects = parseIndex(text, pack);
    if (objects) packs.set(pack, objects);
  }
  return packs;
}

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** An index: `[hash, offset, length]` per object. */
const indexSchema = z.strictObject({
  version: z.literal(1),
  objects: z.array(z.tuple([z.string().regex(SHA256), count, count])),
});

function parseIndex(text: string, pack: string): IndexedObject[] | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = indexSchema.safeParse(raw);
  return parsed.success
    ? parsed.data.objects.map(([hash, offset, length]) => ({ hash, pack, offset, length }))
    : undefined;
}

/** The objects of one pack as read by {@link readPacks}: each carries its hash. */
export type IndexedObject = Packed & { hash: string };

/**
 * Writes one pack. Objects are appended one at a time, in the order their calls came (each
 * waits for the one before). Content the store already has, or that this pack holds already,
 * is not written.
 */
export class PackWriter {
  readonly id = `pack-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  readonly #dir: string;
  readonly #tmp: string;
  readonly #has: (hash: string) => boolean;
  #handle: Promise<fs.FileHandle> | undefined;
  /** Bytes of the pack so far, the pending ones included. */
  #size = 0;
  /** Small objects not yet written, from `#size - #pendingBytes` on: written together (one write per MiB, not one per file). */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  readonly #objects = new Map<string, Packed>();
  #tail: Promise<unknown> = Promise.resolve();

  /** `has`: whether the store holds this content already. */
  constructor(dir: string, has: (hash: string) => boolean) {
    this.#dir = dir;
    this.#tmp = join(dir, `${TEMP_PREFIX}${this.id}`);
    this.#has = has;
  }

  #known(hash: string): boolean {
    return this.#has(hash) || this.#objects.has(hash);
  }

  #file(): Promise<fs.FileHandle> {
    this.#handle ??= fs.mkdir(this.#dir, { recursive: true }).then(() => fs.open(this.#tmp, 'wx', 0o400));
    return this.#handle;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Add content read whole; resolves whether it was written (false: the store has it). */
  add(hash: string, data: Uint8Array): Promise<boolean> {
    return this.#serial(async () => {
      if (this.#known(hash)) return false;
      this.#objects.set(hash, { pack: this.id, offset: this.#size, length: data.length });
      this.#pending.push(data);
      this.#pendingBytes += data.length;
      this.#size += data.length;
      if (this.#pendingBytes >= WRITE_BYTES) await this.#flush();
      return true;
    });
  }

  async #flush(): Promise<void> {
    if (this.#pendingBytes === 0) return;
    const file = await this.#file();
    await writeAll(file, Buffer.concat(this.#pending, this.#pendingBytes), this.#size - this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  /**
   * Add a file (or a `range` of it, `end` inclusive) streamed from `source`, hashing what is
   * written, so the hash is of exactly the bytes kept. Content the store has already is written
   * and then given back (the next object goes over it).
   */
  addFile(
    source: string | Buffer,
    range?: { start: number; end: number },
  ): Promise<{ hash: string; length: number; written: boolean }> {
    return this.#serial(async () => {
      await this.#flush();
      const file = await this.#file();
      const offset = this.#size;
      const digest = createHash('sha256');
      let at = offset;
      for await (const chunk of createReadStream(source, range) as AsyncIterable<Buffer>) {
        digest.update(chunk);
        await writeAll(file, chunk, at);
        at += chunk.length;
      }
      const hash = digest.digest('hex');
      const length = at - offset;
      if (this.#known(hash)) return { hash, length, written: false };
      this.#size = at;
      this.#objects.set(hash, { pack: this.id, offset, length });
      return { hash, length, written: true };
    });
  }

  /**
   * Make the pack last and name it: flush it, rename it into place, then write its index.
   * Returns its objects, or an empty map when nothing was written (no pack is made).
   */
  async finish(): Promise<Map<string, Packed>> {
    await this.#serial(() => this.#flush());
    if (!this.#handle && this.#objects.size === 0) return this.#objects;
    // Opened here when every object was empty (nothing was written, but the index names the pack).
    const file = await this.#file();
    try {
      // An object given back at the end leaves bytes past the last one kept.
      await file.truncate(this.#size);
      await file.sync();
    } finally {
      await file.close();
    }
    if (this.#objects.size === 0) {
      await fs.rm(this.#tmp, { force: true });
      return this.#objects;
    }
    await fs.rename(this.#tmp, packFile(this.#dir, this.id));
    const objects = [...this.#objects].map(([hash, at]) => [hash, at.offset, at.length]);
    // Flushed and renamed; the directory flush that ends it covers the pack's rename too.
    await writeAtomic(indexFile(this.#dir, this.id), JSON.stringify({ version: 1, objects }));
    return this.#objects;
  }

  /** Give up: remove what was written (nothing names it). */
  async abort(): Promise<void> {
    await this.#tail;
    if (!this.#handle) return;
    await (await this.#handle.catch(() => undefined))?.close().catch(() => {});
    await fs.rm(this.#tmp, { force: true });
  }
}

/** Small objects are gathered up to this many bytes before they are written. */
const WRITE_BYTES = 1024 * 1024;

async function writeAll(file: fs.FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
