/**
 * untilDrained: the wait after a write that filled a stream's buffer ends with the drain (true)
 * or with the stream's close (false), also a close that came before the wait, and leaves no
 * listener behind either way.
 */
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { untilDrained } from '../src/writable.js';

/** A stream that holds every write until `release` is called. */
function heldStream() {
  const pending: (() => void)[] = [];
  const stream = new Writable({
    highWaterMark: 4,
    write(_chunk, _encoding, callback) {
      pending.push(callback);
    },
  });
  const release = () => {
    for (const callback of pending.splice(0)) callback();
  };
  return { stream, release };
}

describe('untilDrained', () => {
  it('resolves true on the drain, and removes its listeners', async () => {
    const { stream, release } = heldStream();
    expect(stream.write(Buffer.alloc(16))).toBe(false);
    const waiting = untilDrained(stream);
    expect(stream.listenerCount('drain')).toBe(1);
    release();
    expect(await waiting).toBe(true);
    expect(stream.listenerCount('drain')).toBe(0);
    expect(stream.listenerCount('close')).toBe(0);
  });

  it('resolves false when the stream closes while it waits, and at once when it is already closed', async () => {
    const { stream } = heldStream();
    stream.write(Buffer.alloc(16));
    const waiting = untilDrained(stream);
    stream.destroy();
    expect(await waiting).toBe(false);
    expect(stream.listenerCount('drain')).toBe(0);
    const closed = new PassThrough();
    closed.destroy();
    await new Promise((resolve) => closed.once('close', resolve));
    expect(await untilDrained(closed)).toBe(false);
  });

  it('a thousand full writes leave no listener behind', async () => {
    const { stream, release } = heldStream();
    for (let i = 0; i < 1000; i++) {
      stream.write(Buffer.alloc(16));
      const waiting = untilDrained(stream);
      release();
      await waiting;
    }
    expect(stream.listenerCount('drain') + stream.listenerCount('close')).toBe(0);
  });
});
