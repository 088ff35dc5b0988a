/**
 * Tar for the archive API, one regular file each way.
 *
 * Writing: a ustar header, the data as it comes (gathered into large blocks: a request body
 * written 64 KiB at a time moves at half the rate), then the padding and the end-of-archive
 * blocks. Not tar-stream's pack: fed the same blocks it uploads at the same rate, but it is
 * pushed from a side loop, with drain waits, an entry callback and promises to keep handled. As
 * one generator pulled by the request, the caller's data ending in an error or an abort ends
 * the upload through the one path every other error takes.
 *
 * Reading: TarFileReader, which puts the file's bytes where the caller says (see
 * archive.ts) instead of handing out chunks to be copied.
 */

const BLOCK = 512;
/** The largest size the header's 11 octal digits can hold; beyond, the base-256 form (GNU, read by Go's archive/tar). */
const OCTAL_SIZE_MAX = 0o77777777777;
/** Data is written to an HTTP client's request in blocks of about this size (each write is a chunk). */
const GATHER_BYTES = 1024 * 1024;

export interface TarFileHeader {
  /** At most 100 bytes (no long names: the caller names a temporary file). */
  name: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

export function tarHeader(h: TarFileHeader): Buffer {
  const out = Buffer.alloc(BLOCK);
  if (Buffer.byteLength(h.name) > 100) throw new RangeError(`tar name over 100 bytes: ${h.name}`);
  out.write(h.name, 0, 100, 'utf8');
  const octal = (value: number, at: number, width: number) =>
    out.write(`${value.toString(8).padStart(width - 1, '0')}\0`, at, width, 'ascii');
  octal(h.mode & 0o7777, 100, 8);
  octal(h.uid, 108, 8);
  octal(h.gid, 116, 8);
  if (h.size <= OCTAL_SIZE_MAX) octal(h.size, 124, 12);
  else {
    out[124] = 0x80;
    let rest = BigInt(h.size);
    for (let i = 135; i > 124; i--, rest >>= 8n) out[i] = Number(rest & 0xffn);
  }
  octal(Math.floor(h.mtime.getTime() / 1000), 136, 12);
  out.write('0', 156, 1, 'ascii');
  out.write('ustar\u000000', 257, 8, 'ascii');
  // The checksum is summed with its own field as spaces.
  out.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of out) sum += byte;
  out.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return out;
}

/** How many bytes tarFile yields for a file of `size` bytes. */
export function tarFileLength(size: number): number {
  return BLOCK + size + ((BLOCK - (size % BLOCK)) % BLOCK) + 2 * BLOCK;
}

/**
 * The whole archive of one file; throws if the data is not exactly `header.size` bytes. Chunks
 * smaller than `gatherBytes` are gathered into blocks of that size (larger ones pass as they are).
 */
export async function* tarFile(
  header: TarFileHeader,
  data: AsyncIterable<Uint8Array>,
  gatherBytes = GATHER_BYTES,
): AsyncGenerator<Uint8Array> {
  yield tarHeader(header);
  let total = 0;
  for await (const block of gather(data, gatherBytes)) {
    total += block.length;
    if (total > header.size)
      throw new RangeError(`the data is longer than the ${header.size} bytes declared`);
    yield block;
  }
  if (total !== header.size) throw new RangeError(`the data ended at ${total} of ${header.size} bytes`);
  yield Buffer.alloc(((BLOCK - (total % BLOCK)) % BLOCK) + 2 * BLOCK);
}

/** Chunks gathered into blocks of about `bytes` (a larger chunk passes as it is). */
export async function* gather(data: AsyncIterable<Uint8Array>, bytes: number): AsyncGenerator<Uint8Array> {
  let block: Buffer | undefined;
  let used = 0;
  for await (const chunk of data) {
    if (block && used + chunk.length > bytes) {
      yield block.subarray(0, used);
      block = undefined;
      used = 0;
    }
    if (chunk.length >= bytes) {
      yield chunk;
      continue;
    }
    block ??= Buffer.allocUnsafe(bytes);
    block.set(chunk, used);
    used += chunk.length;
  }
  if (used > 0) yield block!.subarray(0, used);
}

/** Why an archive is not the one regular file a read asked for. */
export class TarReadError extends Error {
  constructor(
    readonly kind: 'not-a-file' | 'too-large' | 'empty' | 'malformed',
    message: string,
    /** The file's size, for too-large. */
    readonly size = 0,
  ) {
    super(message);
    this.name = 'TarReadError';
  }
}

/** Typeflags of entries that describe the next one: PAX records (local, global) and GNU long names. */
const META_TYPES = new Set(['x', 'g', 'L', 'K']);
const TYPE_NAMES: Record<string, string> = {
  '1': 'hard link',
  '2': 'symlink',
  '3': 'character device',
  '4': 'block device',
  '5': 'directory',
  '6': 'fifo',
};
/** A describing entry larger than this is refused (Docker writes a few hundred bytes of PAX records). */
const META_MAX = 1024 * 1024;

/**
 * The first regular file of a tar stream (the archive API's answer for one file), read into a
 * buffer of exactly its size. Push-driven and copy-free where the source allows: `want()` is
 * where the next bytes go (a socket can read straight into it), `wrote(n)` says n arrived;
 * `push(chunk)` does both for a source that hands out its own chunks. PAX records (their `size`
 * counts) and GNU long names before the entry are read and passed over; anything after the
 * file's data (padding, the end blocks) is never asked for.
 */
export class TarFileReader {
  #stage: 'header' | 'meta' | 'data' | 'done' = 'header';
  #scratch: Buffer = Buffer.allocUnsafe(BLOCK);
  #need = BLOCK;
  #have = 0;
  #metaType = '';
  /** The records of a describing entry, without their padding. */
  #metaLength = 0;
  #paxSize: number | undefined;
  #data: Buffer = Buffer.alloc(0);
  #at = 0;

  constructor(private readonly maxBytes: number) {}

  get done(): boolean {
    return this.#stage === 'done';
  }

  /** The file's bytes, once done. */
  get data(): Buffer {
    return this.#data;
  }

  want(): Buffer {
    return this.#stage === 'data'
      ? this.#data.subarray(this.#at)
      : this.#scratch.subarray(this.#have, this.#need);
  }

  wrote(n: number): void {
    if (this.#stage === 'data') {
      this.#at += n;
      if (this.#at === this.#data.length) this.#stage = 'done';
      return;
    }
    this.#have += n;
    if (this.#have < this.#need) return;
    if (this.#stage === 'meta') this.#meta();
    else this.#header();
  }

  push(chunk: Uint8Array): void {
    let from = 0;
    while (from < chunk.length && !this.done) {
      const into = this.want();
      const n = Math.min(into.length, chunk.length - from);
      into.set(chunk.subarray(from, from + n));
      from += n;
      this.wrote(n);
    }
  }

  #header(): void {
    const block = this.#scratch.subarray(0, BLOCK);
    if (block.every((byte) => byte === 0)) throw new TarReadError('empty', 'the archive holds no entry');
    if (!checksumHolds(block)) throw new TarReadError('malformed', 'a tar header fails its checksum');
    const type = String.fromCharCode(block[156]!);
    this.#have = 0;
    if (META_TYPES.has(type)) {
      const length = headerSize(block);
      if (length > META_MAX) throw new TarReadError('malformed', `a tar ${type} entry of ${length} bytes`);
      this.#stage = 'meta';
      this.#metaType = type;
      this.#metaLength = length;
      this.#need = Math.ceil(length / BLOCK) * BLOCK;
      if (this.#scratch.length < this.#need) this.#scratch = Buffer.allocUnsafe(this.#need);
      if (this.#need === 0) this.#meta();
      return;
    }
    // '7' (contiguous) is a regular file too.
    if (type !== '0' && type !== '\0' && type !== '7')
      throw new TarReadError(
        'not-a-file',
        `not a regular file (${TYPE_NAMES[type] ?? `tar type ${JSON.stringify(type)}`})`,
      );
    const size = this.#paxSize ?? headerSize(block);
    if (size > this.maxBytes) throw new TarReadError('too-large', `larger than ${this.maxBytes} bytes`, size);
    this.#data = Buffer.allocUnsafe(size);
    this.#at = 0;
    this.#stage = size === 0 ? 'done' : 'data';
  }

  #meta(): void {
    if (this.#metaType === 'x') this.#paxSize = paxSize(this.#scratch.subarray(0, this.#metaLength));
    this.#stage = 'header';
    this.#need = BLOCK;
    this.#have = 0;
  }
}

/** The header's checksum field against the sum of its bytes (the field counted as spaces; signed sums too, as old tars wrote). */
function checksumHolds(block: Buffer): boolean {
  const recorded = Number.parseInt(
    block
      .toString('latin1', 148, 156)
      .replace(/[\0 ]+/g, ' ')
      .trim(),
    8,
  );
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return recorded === unsigned || recorded === signed;
}

/** The size field: octal, or the base-256 form when its first byte has the high bit set. */
function headerSize(block: Buffer): number {
  if (block[124]! & 0x80) {
    let size = BigInt(block[124]! & 0x7f);
    for (let i = 125; i < 136; i++) size = (size << 8n) | BigInt(block[i]!);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarReadError('malformed', 'a tar size past 2^53');
    return Number(size);
  }
  const text = block
    .toString('latin1', 124, 136)
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]*$/.test(text))
    throw new TarReadError('malformed', `a tar size field of ${JSON.stringify(text)}`);
  return text === '' ? 0 : Number.parseInt(text, 8);
}

/** The `size` of PAX records (`<length> <key>=<value>\n` each), if one is there. */
function paxSize(records: Buffer): number | undefined {
  let size: number | undefined;
  let at = 0;
  while (at < records.length) {
    const space = records.indexOf(0x20, at);
    const length = Number(records.toString('latin1', at, space));
    if (space < 0 || !Number.isSafeInteger(length) || length <= space - at || at + length > records.length)
      throw new TarReadError('malformed', 'a PAX record with a bad length');
    const record = records.toString('utf8', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'size') {
      const value = record.slice(eq + 1);
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)))
        throw new TarReadError('malformed', `a PAX size of ${JSON.stringify(value)}`);
      size = Number(value);
    }
    at += length;
  }
  return size;
}
