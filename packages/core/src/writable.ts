/**
 * Waiting out a full write buffer, for the streams every backend writes to (a child's stdin, an
 * SSH channel, a socket to the Docker daemon).
 */

/** The part of a writable stream the wait needs. */
export interface DrainingStream {
  readonly destroyed: boolean;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * After a write that returned false: true once the stream drains, false once it closes without
 * draining, or at once when it is already closed ('close' would not come again). Both listeners
 * go either way, so a long series of writes leaves none behind.
 */
export function untilDrained(stream: DrainingStream): Promise<boolean> {
  if (stream.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const settle = (drained: boolean) => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      resolve(drained);
    };
    const onDrain = () => settle(true);
    const onClose = () => settle(false);
    stream.on('drain', onDrain);
    stream.on('close', onClose);
  });
}
