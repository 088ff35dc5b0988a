/**
 * Splits a byte stream into a command's output and the runner's marker lines, without
 * copying the output: data is handed on as views of the chunks it arrived in. Only a chunk
 * that ends in what may be the start of a marker is held back, until the next chunk says.
 */
import type { Marker } from './protocol.js';
import { parseMarker } from './protocol.js';

export type ScanEvent = { kind: 'data'; bytes: Uint8Array } | { kind: 'marker'; marker: Marker };

/** A marker line can never be longer than this; anything longer is not one of ours. */
const MAX_MARKER_LINE = 512;

export class MarkerScanner {
  readonly #nonce: Buffer;
  #held: Buffer = Buffer.alloc(0);

  constructor(nonce: string) {
    this.#nonce = Buffer.from(nonce, 'latin1');
  }

  push(chunk: Uint8Array): ScanEvent[] {
    const events: ScanEvent[] = [];
    const input = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const data = this.#held.length > 0 ? Buffer.concat([this.#held, input]) : input;
    this.#held = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      const at = data.indexOf(this.#nonce, pos);
      if (at < 0) {
        const keep = this.#partialNonceAtEnd(data, pos);
        if (data.length - keep > pos)
          events.push({ kind: 'data', bytes: data.subarray(pos, data.length - keep) });
        if (keep > 0) this.#held = Buffer.from(data.subarray(data.length - keep));
        return events;
      }
      if (at > pos) events.push({ kind: 'data', bytes: data.subarray(pos, at) });
      const start = at + this.#nonce.length;
      const newline = data.indexOf(10, start);
      if (newline < 0) {
        if (data.length - at > MAX_MARKER_LINE) {
          // Not a marker after all (a command that printed our nonce): pass it on as data.
          events.push({ kind: 'data', bytes: data.subarray(at, start) });
          pos = start;
          continue;
        }
        this.#held = Buffer.from(data.subarray(at));
        return events;
      }
      const marker = parseMarker(data.toString('latin1', start, newline));
      if (marker) {
        events.push({ kind: 'marker', marker });
        pos = newline + 1;
      } else {
        events.push({ kind: 'data', bytes: data.subarray(at, start) });
        pos = start;
      }
      if (pos >= data.length) return events;
    }
  }

  /** Bytes left at the end of the stream (a partial nonce that never completed). */
  flush(): Uint8Array | undefined {
    const held = this.#held;
    this.#held = Buffer.alloc(0);
    return held.length > 0 ? held : undefined;
  }

  /** Length of the longest suffix of data[from..] that is a proper prefix of the nonce. */
  #partialNonceAtEnd(data: Buffer, from: number): number {
    const first = this.#nonce[0]!;
    const earliest = Math.max(from, data.length - this.#nonce.length + 1);
    for (let i = data.indexOf(first, earliest); i >= 0 && i < data.length; i = data.indexOf(first, i + 1)) {
      const tail = data.subarray(i);
      if (this.#nonce.subarray(0, tail.length).equals(tail)) return tail.length;
    }
    return 0;
  }
}
