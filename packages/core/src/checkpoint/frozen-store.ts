import type { CheckpointStore } from '../sandbox.js';
import type { CheckpointInfo } from '../types.js';

/**
 * A store whose checkpoints and restores run inside `frozen` (the backend stops every process of
 * the sandbox for its duration), so no sandbox process can race the store on the live tree. A
 * checkpoint's freeze ends as soon as the store has read the tree (`treeRead`): writing its
 * manifest does not need the sandbox stopped.
 */
export function frozenCheckpointStore(
  inner: CheckpointStore,
  frozen: <T>(fn: () => Promise<T>) => Promise<T>,
): CheckpointStore {
  return {
    create: async (opts) => {
      // The sandbox runs again once the store has read the tree, while the store still writes.
      // (`created` is handled from the start: a failed thaw leaves no unhandled rejection behind.)
      let created: Promise<CheckpointInfo> | undefined;
      await frozen(
        () =>
          new Promise<void>((resolve, reject) => {
            const treeRead = () => {
              opts.treeRead?.();
              resolve();
            };
            created = inner.create({ ...opts, treeRead });
            created.then(() => resolve(), reject);
          }),
      );
      // Returned once both are done: the next call finds the sandbox running and the store idle.
      return created!;
    },
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
