/**
 * One output stream of a command, as the transport delivers it: chunks pushed by a reader,
 * read once as an async iterable. `push` resolves only while less than `highWaterBytes` is
 * waiting, so a slow reader slows the session's reader (and through it the command), as a
 * pipe would, instead of growing memory.
 */
export class StreamQueue implements AsyncIterable<Uint8Array> {
  readonly #highWaterBytes: number;
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  #ended = false;
  #wakeReader: (() => void) | undefined;
  #wakeWriters: (() => void)[] = [];
  #reading = false;
  /** Set when the queue stopped buffering because nobody read it: reading then throws this. */
  #unread: Error | undefined;

  /** `highWaterBytes: Infinity` never holds a writer back (the caller bounds memory itself). */
  constructor(highWaterBytes = 1024 * 1024) {
    this.#highWaterBytes = highWaterBytes;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Add a chunk; the promise resolves when there is room again. Chunks after `end` are dropped. */
  push(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#ended || this.#unread || chunk.length === 0) return undefined;
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    this.#wakeReader?.();
    if (this.#bytes < this.#highWaterBytes) return undefined;
    return new Promise((resolve) => this.#wakeWriters.push(resolve));
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#wakeReader?.();
    this.#releaseWriters();
  }

  /** Drop what is buffered (nobody will read it) and end. */
  discard(): void {
    this.#chunks = [];
    this.#bytes = 0;
    this.end();
  }

  /**
   * Stop buffering if reading has not started (the caller will not read): what is held is
   * dropped, later chunks are too, and reading afterwards throws `error` instead of ending early.
   */
  stopIfUnread(error: Error): void {
    if (this.#reading || this.#unread) return;
    this.#unread = error;
    this.#chunks = [];
    this.#bytes = 0;
    this.#releaseWriters();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    if (this.#unread) throw this.#unread;
    this.#reading = true;
    for (;;) {
      const chunk = this.#chunks.shift();
      if (chunk) {
        this.#bytes -= chunk.length;
        if (this.#bytes < this.#highWaterBytes) this.#releaseWriters();
        yield chunk;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wakeReader = resolve;
      });
      this.#wakeReader = undefined;
    }
  }

  #releaseWriters(): void {
    const writers = this.#wakeWriters;
    this.#wakeWriters = [];
    for (const wake of writers) wake();
  }
}
