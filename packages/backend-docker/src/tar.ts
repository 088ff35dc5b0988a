/**
 * One regular file as a tar stream, for the archive API: a ustar header, the data as it comes
 * (gathered into large blocks: a request body written 64 KiB at a time moves at half the rate),
 * then the padding and the end-of-archive blocks.
 *
 * Not tar-stream's pack (still used to read archives): fed the same blocks it uploads at the
 * same rate, but it is pushed from a side loop, with drain waits, an entry callback and
 * promises to keep handled. As one generator pulled by the request, the caller's data ending
 * in an error or an abort ends the upload through the one path every other error takes.
 */

const BLOCK = 512;
/** The largest size the header's 11 octal digits can hold; beyond, the base-256 form (GNU, read by Go's archive/tar). */
const OCTAL_SIZE_MAX = 0o77777777777;
/** Data is written to the request in blocks of about this size. */
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

/** The whole archive of one file; throws if the data is not exactly `header.size` bytes. */
export async function* tarFile(
  header: TarFileHeader,
  data: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  yield tarHeader(header);
  let total = 0;
  for await (const block of gather(data, GATHER_BYTES)) {
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
