/**
 * frozenCheckpointStore: a checkpoint's freeze lasts while the store reads the tree, not while
 * it writes its manifest; a restore's lasts to its end. The backend's freeze is a fake that
 * logs; the inner store is one whose steps the test lets go one at a time.
 */
import { describe, expect, it } from 'vitest';
import { frozenCheckpointStore } from '../src/backend.js';
import type { CheckpointCreateOptions, CheckpointStore } from '../src/sandbox.js';
import type { CheckpointInfo } from '../src/types.js';

const info: CheckpointInfo = { id: 'ckpt-1', label: undefined, createdAt: '', entries: 1, bytesStored: 0 };

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** An inner store whose create reads the tree, says so (or not), then waits for `commit`. */
function steppedStore(log: string[], o: { says: boolean }) {
  const commit = deferred<CheckpointInfo>();
  const restored = deferred();
  const inner: CheckpointStore = {
    async create(opts: CheckpointCreateOptions) {
      log.push('read the tree');
      if (o.says) opts.treeRead?.();
      const done = await commit.promise;
      log.push('manifest written');
      return done;
    },
    async restore() {
      log.push('restoring');
      await restored.promise;
      log.push('restored');
    },
    list: async () => [],
    delete: async () => {},
  };
  return { inner, commit, restored };
}

function loggedFreeze(log: string[], thaw: { fails?: Error } = {}) {
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    log.push('freeze');
    let result: T;
    try {
      result = await fn();
    } finally {
      log.push('thaw');
    }
    if (thaw.fails) throw thaw.fails;
    return result;
  };
}

const settled = () => new Promise((r) => setImmediate(r));

describe('frozenCheckpointStore', () => {
  it('ends the freeze once the store has read the tree; the checkpoint returns once the manifest is written', async () => {
    const log: string[] = [];
    const { inner, commit } = steppedStore(log, { says: true });
    const store = frozenCheckpointStore(inner, loggedFreeze(log));
    let returned = false;
    const created = store.create({ label: undefined, signal: undefined }).then((i) => {
      returned = true;
      return i;
    });
    await settled();
    expect(log).toEqual(['freeze', 'read the tree', 'thaw']);
    expect(returned).toBe(false);
    commit.resolve(info);
    expect(await created).toBe(info);
    expect(log).toEqual(['freeze', 'read the tree', 'thaw', 'manifest written']);
  });

  it('a store that does not say when it has read the tree stays frozen to its end', async () => {
    const log: string[] = [];
    const { inner, commit } = steppedStore(log, { says: false });
    const store = frozenCheckpointStore(inner, loggedFreeze(log));
    const created = store.create({ label: undefined, signal: undefined });
    await settled();
    expect(log).toEqual(['freeze', 'read the tree']);
    commit.resolve(info);
    await created;
    expect(log).toEqual(['freeze', 'read the tree', 'manifest written', 'thaw']);
  });

  it('a manifest that fails after the thaw fails the checkpoint', async () => {
    const log: string[] = [];
    const { inner, commit } = steppedStore(log, { says: true });
    const store = frozenCheckpointStore(inner, loggedFreeze(log));
    const created = store.create({ label: undefined, signal: undefined });
    await settled();
    commit.reject(new Error('disk full'));
    await expect(created).rejects.toThrow('disk full');
  });

  it('a thaw that fails fails the checkpoint; the store still finishing is not an unhandled rejection', async () => {
    const log: string[] = [];
    const { inner, commit } = steppedStore(log, { says: true });
    const store = frozenCheckpointStore(inner, loggedFreeze(log, { fails: new Error('unpause failed') }));
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await expect(store.create({ label: undefined, signal: undefined })).rejects.toThrow('unpause failed');
      commit.reject(new Error('disk full'));
      await settled();
      await settled();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a restore stays frozen to its end', async () => {
    const log: string[] = [];
    const { inner, restored } = steppedStore(log, { says: true });
    const store = frozenCheckpointStore(inner, loggedFreeze(log));
    const restoring = store.restore('ckpt-1', undefined);
    await settled();
    expect(log).toEqual(['freeze', 'restoring']);
    restored.resolve();
    await restoring;
    expect(log).toEqual(['freeze', 'restoring', 'restored', 'thaw']);
  });
});
