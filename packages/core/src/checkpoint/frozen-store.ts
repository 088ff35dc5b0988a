import type { CheckpointStore } from '../sandbox.js';
import type { CheckpointInfo } from '../types.js';

/**
 * A store whose checkpoints and restores run inside `frozen` (the backend stops every process of
 * the sandbox for its duration), so no sandbox process can race the store on the live tree.
 */
export function frozenCheckpointStore(
  inner: CheckpointStore,
  frozen: <T>(fn: () => Promise<T>) => Promise<T>,
): CheckpointStore {
  return {
    create: (opts) => frozen(() => inner.create(opts)),
    restore: (id, signal) => frozen(() => inner.restore(id, signal)),
    list: (): Promise<CheckpointInfo[]> => inner.list(),
    delete: (id) => inner.delete(id),
    // The scrub reads only the store; the record is read before anything runs in the sandbox.
    ...(inner.verify ? { verify: (signal) => inner.verify!(signal) } : {}),
    ...(inner.interruptedRollback
      ? { interruptedRollback: (signal) => inner.interruptedRollback!(signal) }
      : {}),
  };
}
