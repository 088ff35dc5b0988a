/** Bounded capture of a command's output stream: the head and the tail are kept, the middle dropped. */

export const DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024;

export class OutputBuffer {
  readonly #headCap: number;
  readonly #tailCap: number;
  readonly #head: Uint8Array[] = [];
  #headBytes = 0;
  #tail: Uint8Array[] = [];
  #tailBytes = 0;
  #total = 0;

  constructor(maxBytes: number = DEFAULT_MAX_OUTPUT_BYTES) {
    this.#headCap = Math.ceil(maxBytes / 2);
    this.#tailCap = maxBytes - this.#headCap;
  }

  push(chunk: Uint8Array): void {
    this.#total += chunk.length;
    let rest = chunk;
    if (this.#headBytes < this.#headCap) {
      const take = Math.min(this.#headCap - this.#headBytes, rest.length);
      this.#head.push(rest.slice(0, take));
      this.#headBytes += take;
      rest = rest.subarray(take);
    }
    if (rest.length === 0 || this.#tailCap === 0) return;
    if (rest.length >= this.#tailCap) {
      this.#tail = [rest.slice(rest.length - this.#tailCap)];
      this.#tailBytes = this.#tailCap;
      return;
    }
    this.#tail.push(rest.slice());
    this.#tailBytes += rest.length;
    // Drop whole chunks from the front while what remains still fills the tail.
    while (this.#tail.length > 1 && this.#tailBytes - this.#tail[0]!.length >= this.#tailCap) {
      this.#tailBytes -= this.#tail.shift()!.length;
    }
  }

  /** Total bytes pushed, including any dropped from the middle. */
  get totalBytes(): number {
    return this.#total;
  }

  get truncated(): boolean {
    return this.#total > this.#headBytes + Math.min(this.#tailBytes, this.#tailCap);
  }

  /** Head followed by tail (exactly the stream when nothing was dropped). */
  bytes(): Uint8Array {
    const tail = concat(this.#tail);
    const keptTail = tail.length > this.#tailCap ? tail.subarray(tail.length - this.#tailCap) : tail;
    return concat([...this.#head, keptTail]);
  }
}

export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

const decoder = new TextDecoder('utf-8');
export function decodeUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Decode a stream of chunks as UTF-8, keeping a character that is split across chunks whole. */
export async function* decodeUtf8Stream(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const streaming = new TextDecoder('utf-8');
  for await (const chunk of chunks) {
    const text = streaming.decode(chunk, { stream: true });
    if (text) yield text;
  }
  const last = streaming.decode();
  if (last) yield last;
}

const encoder = new TextEncoder();
export function encodeUtf8(text: string): Uint8Array {
  return encoder.encode(text);
}
