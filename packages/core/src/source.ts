/**
 * The caller's data as a backend reads it, with the error it ended in kept: a transport (an SDK,
 * a pipe into a process) may wrap that error in its own or stop at it silently, and a write
 * whose data failed must fail with the data's error, never succeed with part of it.
 */
export interface WatchedSource {
  readonly data: AsyncIterable<Uint8Array>;
  /** Whether the data ended in an error (rather than being read to its end or left unread). */
  readonly failed: boolean;
  /** That error. */
  readonly error: unknown;
}

export function watchSource(data: AsyncIterable<Uint8Array>): WatchedSource {
  const state = { failed: false, error: undefined as unknown };
  return {
    data: (async function* () {
      try {
        yield* data;
      } catch (error) {
        state.failed = true;
        state.error = error;
        throw error;
      }
    })(),
    get failed() {
      return state.failed;
    },
    get error() {
      return state.error;
    },
  };
}
