/**
 * writeFile's data as byte chunks for a backend: checked as it comes, held to a declared size,
 * and read from a Node stream in large blocks.
 */
import { Readable } from 'node:stream';
import type { ErrorContext } from './errors.js';
import { encodeUtf8 } from './output.js';
import { invalidArgument } from './validate.js';

/**
 * How much one read of a Node stream asks for. A file stream reads 64 KiB at a time unless told
 * otherwise, and each read is a round trip to libuv's thread pool: 256 MiB took 180-340 ms to
 * read that way here, 40-110 ms in 1 MiB reads, and an upload cannot go faster than its source.
 */
export const STREAM_READ_BYTES = 1024 * 1024;

/** Chunks held to a declared total: an error before the first byte past it, or at an early end. */
export async function* ofSize(chunks: AsyncIterable<Uint8Array>, size: number, context: ErrorContext) {
  let total = 0;
  for await (const chunk of chunks) {
    total += chunk.length;
    if (total > size)
      throw invalidArgument('data', `is longer than its declared size of ${size} bytes`, context);
    yield chunk;
  }
  if (total < size)
    throw invalidArgument('data', `ended at ${total} bytes, short of its declared size of ${size}`, context);
}

/**
 * writeFile's data as byte chunks. A string chunk (a stream read with an encoding) is UTF-8;
 * anything else that is not bytes is an InvalidArgumentError, up front for the data itself and
 * as the stream reaches it for a chunk.
 */
export function toChunks(
  data: string | Uint8Array | AsyncIterable<Uint8Array>,
  context: ErrorContext,
): AsyncGenerator<Uint8Array> {
  const iterable =
    data !== null &&
    typeof data === 'object' &&
    (Symbol.asyncIterator in data || Symbol.iterator in (data as object));
  if (typeof data !== 'string' && !(data instanceof Uint8Array) && !iterable)
    throw invalidArgument('data', 'must be a string, a Uint8Array or an (async) iterable of them', context);
  const bytes = (chunk: unknown): Uint8Array => {
    if (chunk instanceof Uint8Array) return chunk;
    if (typeof chunk === 'string') return encodeUtf8(chunk);
    throw invalidArgument(
      'data',
      `has a chunk that is ${typeof chunk}, not a Uint8Array or a string`,
      context,
    );
  };
  return (async function* () {
    if (typeof data === 'string') yield encodeUtf8(data);
    else if (data instanceof Uint8Array) yield data;
    else {
      const first = data instanceof Readable ? widenReads(data) : null;
      if (first !== null) yield bytes(first);
      for await (const chunk of data as AsyncIterable<unknown>) yield bytes(chunk);
    }
  })();
}

/**
 * Make a byte stream that nobody reads yet fill its buffer in reads of STREAM_READ_BYTES. Asking
 * `read()` for more than the buffer holds is how Node lets a reader grow it, and a stream's
 * `_read` is asked for the buffer's size. Returns what that read gave: the stream's rest, if it
 * had already ended. A stream in object mode, already flowing (someone listens for 'data') or
 * already reading this much is left as it is.
 */
function widenReads(stream: Readable): unknown {
  if (stream.readableObjectMode || stream.readableFlowing === true) return null;
  if (stream.readableHighWaterMark >= STREAM_READ_BYTES) return null;
  return stream.read(STREAM_READ_BYTES);
}
