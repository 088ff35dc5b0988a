/**
 * Docker's multiplexed stream (a non-TTY attach): frames of an 8-byte header — stream type
 * (1 stdout, 2 stderr), three zero bytes, payload length as big-endian uint32 — then the
 * payload. Payloads are passed on as views of the received chunks, without copying, however
 * the frames are split across chunks.
 */
export type StreamType = 'stdout' | 'stderr';

export class DockerDemuxer {
  readonly #header = Buffer.alloc(8);
  #headerFill = 0;
  #remaining = 0;
  #current: StreamType = 'stdout';

  constructor(private readonly emit: (stream: StreamType, chunk: Buffer) => void) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, chunk.length - offset);
        this.emit(this.#current, chunk.subarray(offset, offset + take));
        this.#remaining -= take;
        offset += take;
        continue;
      }
      const take = Math.min(8 - this.#headerFill, chunk.length - offset);
      chunk.copy(this.#header, this.#headerFill, offset, offset + take);
      this.#headerFill += take;
      offset += take;
      if (this.#headerFill < 8) return;
      this.#headerFill = 0;
      // Type 0 (stdin echo) never occurs without a TTY; anything but stderr is treated as stdout.
      this.#current = this.#header[0] === 2 ? 'stderr' : 'stdout';
      this.#remaining = this.#header.readUInt32BE(4);
    }
  }
}
