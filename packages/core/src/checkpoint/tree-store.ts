/**
 * An incremental, content-addressed checkpoint store for a directory the library can read
 * directly. A checkpoint is a manifest (one entry per path) plus objects named by the SHA-256 of
 * their content; only files whose (inode, size, mtime, ctime) changed since the last scan are
 * read, so the cost follows the change, not the tree. Objects are copies, never hard links, so
 * the store shares no mutable storage with the live tree. Objects and manifests are written to a
 * temporary name and renamed, so a crash mid-checkpoint leaves earlier checkpoints intact.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  constants as fsConstants,
  lstatSync,
  readdirSync,
  readlinkSync,
} from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CheckpointNotFoundError } from '../errors.js';
import type { CheckpointStore } from '../sandbox.js';
import type { CheckpointInfo } from '../types.js';

/** Files up to this size are read in one piece; larger ones are streamed. */
const SMALL_FILE_BYTES = 1024 * 1024;

export type EntryType = 'file' | 'dir' | 'symlink';

export interface ManifestEntry {
  /** Path relative to the tree root, `/`-separated. */
  path: string;
  type: EntryType;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  /** Files: SHA-256 of the content. */
  hash?: string;
  size?: number;
  /** Files: modification time to restore, in nanoseconds since the epoch (as a decimal string). */
  mtimeNs?: string;
  /** Symlinks: the link target. */
  target?: string;
}

export interface Manifest {
  info: CheckpointInfo;
  entries: ManifestEntry[];
}

/** What identifies a file's content without reading it; if any part changes the file is re-read. */
interface StatKey {
  ino: string;
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  hash: string;
}

interface ScannedEntry extends ManifestEntry {
  stat?: Omit<StatKey, 'hash'>;
}

export interface TreeStoreOptions {
  /** The live tree. */
  root: string;
  /** Where manifests and objects live; must be outside `root`. */
  storeDir: string;
}

export class TreeCheckpointStore implements CheckpointStore {
  readonly #root: string;
  readonly #objects: string;
  readonly #manifests: string;
  readonly #cacheFile: string;
  #cache: Map<string, StatKey> | undefined;
  /** Hashes of the objects in the store, read once per process. */
  #known: Set<string> | undefined;
  /** Checkpoint operations on one tree run one at a time. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: TreeStoreOptions) {
    this.#root = options.root;
    this.#objects = join(options.storeDir, 'objects');
    this.#manifests = join(options.storeDir, 'manifests');
    this.#cacheFile = join(options.storeDir, 'stat-cache.json');
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  create(opts: { label: string | undefined; signal?: AbortSignal | undefined }): Promise<CheckpointInfo> {
    return this.#serial(async () => {
      await fs.mkdir(this.#objects, { recursive: true });
      await fs.mkdir(this.#manifests, { recursive: true });
      const cache = await this.#loadCache();
      const scanned = await this.#scan();
      let bytesStored = 0;
      const nextCache = new Map<string, StatKey>();
      const files = scanned.filter((e) => e.type === 'file' && e.stat);
      await forEachLimit(files, 16, async (entry) => {
        opts.signal?.throwIfAborted();
        const known = cache.get(entry.path);
        if (known && sameStat(known, entry.stat!) && (await this.#hasObject(known.hash))) {
          entry.hash = known.hash;
        } else {
          const stored = await this.#storeObject(join(this.#root, entry.path), entry.size ?? 0);
          entry.hash = stored.hash;
          entry.size = stored.size;
          bytesStored += stored.written;
        }
        nextCache.set(entry.path, { ...entry.stat!, hash: entry.hash });
      });
      const info: CheckpointInfo = {
        id: `ckpt-${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`,
        label: opts.label,
        createdAt: new Date().toISOString(),
        entries: scanned.length,
        bytesStored,
      };
      const manifest: Manifest = { info, entries: scanned.map(({ stat: _stat, ...entry }) => entry) };
      await writeAtomic(join(this.#manifests, `${info.id}.json`), JSON.stringify(manifest));
      await this.#saveCache(nextCache);
      return info;
    });
  }

  restore(id: string, signal?: AbortSignal | undefined): Promise<void> {
    return this.#serial(async () => {
      const manifest = await this.#readManifest(id);
      const cache = await this.#loadCache();
      const current = new Map((await this.#scan()).map((e) => [e.path, e]));
      const wanted = new Map(manifest.entries.map((e) => [e.path, e]));

      // Remove what the checkpoint does not have, or has as another type (deepest first).
      const doomed = [...current.values()]
        .filter((e) => wanted.get(e.path)?.type !== e.type)
        .sort((a, b) => b.path.length - a.path.length);
      for (const entry of doomed) {
        await fs.rm(join(this.#root, entry.path), { recursive: true, force: true });
        current.delete(entry.path);
      }

      const nextCache = new Map<string, StatKey>();
      // Parents before children: manifest entries are in scan order (a directory precedes its contents).
      for (const entry of manifest.entries) {
        signal?.throwIfAborted();
        const abs = join(this.#root, entry.path);
        const have = current.get(entry.path);
        if (entry.type === 'dir') {
          if (!have) await fs.mkdir(abs, { mode: 0o700 });
        } else if (entry.type === 'symlink') {
          if (have?.target !== entry.target) {
            if (have) await fs.rm(abs, { force: true });
            await fs.symlink(entry.target!, abs);
          }
        } else {
          const known = have?.stat && cache.get(entry.path);
          const unchanged = known && have?.stat && sameStat(known, have.stat) && known.hash === entry.hash;
          if (unchanged && have.mode === entry.mode) {
            nextCache.set(entry.path, known);
            continue;
          }
          if (unchanged) await fs.chmod(abs, entry.mode);
          else await this.#restoreFile(entry, abs);
          const st = await fs.lstat(abs, { bigint: true });
          nextCache.set(entry.path, { ...statKey(st), hash: entry.hash! });
        }
      }
      // Modes last, deepest first, so a read-only directory does not block restoring its contents.
      for (const entry of [...manifest.entries].reverse()) {
        if (entry.type === 'dir') await fs.chmod(join(this.#root, entry.path), entry.mode);
      }
      await this.#saveCache(nextCache);
    });
  }

  async list(): Promise<CheckpointInfo[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.#manifests);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const infos = await Promise.all(
      names
        .filter((n) => n.endsWith('.json'))
        .map(async (n) => (await this.#readManifest(n.slice(0, -5))).info),
    );
    return infos.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  delete(id: string): Promise<void> {
    return this.#serial(async () => {
      await this.#readManifest(id);
      await fs.rm(join(this.#manifests, `${id}.json`));
      await this.#collectGarbage();
    });
  }

  /** Remove objects that no manifest and no cached stat refers to. */
  async #collectGarbage(): Promise<void> {
    const live = new Set<string>();
    for (const name of await fs.readdir(this.#manifests)) {
      if (!name.endsWith('.json')) continue;
      for (const e of (await this.#readManifest(name.slice(0, -5))).entries) if (e.hash) live.add(e.hash);
    }
    for (const prefix of await fs.readdir(this.#objects)) {
      for (const name of await fs.readdir(join(this.#objects, prefix))) {
        if (live.has(prefix + name)) continue;
        await fs.rm(join(this.#objects, prefix, name), { force: true });
        this.#known?.delete(prefix + name);
      }
    }
  }

  async #readManifest(id: string): Promise<Manifest> {
    if (!/^[A-Za-z0-9_.-]+$/.test(id))
      throw new CheckpointNotFoundError(`no checkpoint ${JSON.stringify(id)}`);
    try {
      return JSON.parse(await fs.readFile(join(this.#manifests, `${id}.json`), 'utf8')) as Manifest;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new CheckpointNotFoundError(`no checkpoint ${JSON.stringify(id)}`, { subject: id });
      throw error;
    }
  }

  /**
   * Every entry below the root, parents before children, with stat facts for files. Synchronous
   * lstat is several times faster than the promise API for many small calls; the walk yields to
   * the event loop every few hundred directories entries so other work is not starved.
   */
  async #scan(): Promise<ScannedEntry[]> {
    const out: ScannedEntry[] = [];
    const stack = [''];
    let sinceYield = 0;
    while (stack.length > 0) {
      const rel = stack.pop()!;
      const names = readdirSync(join(this.#root, rel)).sort();
      const subdirs: string[] = [];
      for (const name of names) {
        const path = rel ? `${rel}/${name}` : name;
        const abs = join(this.#root, path);
        const st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
        if (!st) continue; // vanished during the scan
        const mode = Number(st.mode & 0o7777n);
        if (st.isDirectory()) {
          out.push({ path, type: 'dir', mode });
          subdirs.push(path);
        } else if (st.isSymbolicLink()) {
          out.push({ path, type: 'symlink', mode, target: readlinkSync(abs) });
        } else if (st.isFile()) {
          out.push({
            path,
            type: 'file',
            mode,
            size: Number(st.size),
            mtimeNs: st.mtimeNs.toString(),
            stat: statKey(st),
          });
        }
        // Sockets, FIFOs and devices are not captured.
      }
      stack.push(...subdirs.reverse());
      sinceYield += names.length;
      if (sinceYield > 500) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    return out;
  }

  #objectPath(hash: string): string {
    return join(this.#objects, hash.slice(0, 2), hash.slice(2));
  }

  async #hasObject(hash: string): Promise<boolean> {
    if (!this.#known) {
      const known = new Set<string>();
      for (const prefix of await fs.readdir(this.#objects)) {
        if (prefix.length !== 2) continue;
        for (const name of await fs.readdir(join(this.#objects, prefix))) known.add(prefix + name);
      }
      this.#known = known;
    }
    return this.#known.has(hash);
  }

  /** Copy a file into the store while hashing it, in one read (small files in one piece, large ones streamed). */
  async #storeObject(source: string, size: number): Promise<{ hash: string; size: number; written: number }> {
    const tmp = join(this.#objects, `.tmp-${randomUUID()}`);
    try {
      let digest: string;
      let actual = 0;
      if (size <= SMALL_FILE_BYTES) {
        const data = await fs.readFile(source);
        digest = createHash('sha256').update(data).digest('hex');
        actual = data.length;
        if (await this.#hasObject(digest)) return { hash: digest, size: actual, written: 0 };
        await fs.writeFile(tmp, data, { mode: 0o400 });
      } else {
        const hash = createHash('sha256');
        await pipeline(
          createReadStream(source),
          async function* (chunks: AsyncIterable<Buffer>) {
            for await (const chunk of chunks) {
              hash.update(chunk);
              actual += chunk.length;
              yield chunk;
            }
          },
          createWriteStream(tmp, { mode: 0o400 }),
        );
        digest = hash.digest('hex');
        if (await this.#hasObject(digest)) {
          await fs.rm(tmp, { force: true });
          return { hash: digest, size: actual, written: 0 };
        }
      }
      await fs.mkdir(join(this.#objects, digest.slice(0, 2)), { recursive: true });
      await fs.rename(tmp, this.#objectPath(digest));
      this.#known?.add(digest);
      return { hash: digest, size: actual, written: actual };
    } catch (error) {
      await fs.rm(tmp, { force: true });
      throw error;
    }
  }

  /** Replace a file with a fresh copy of its object (a new inode: nothing is shared with the store). */
  async #restoreFile(entry: ManifestEntry, abs: string): Promise<void> {
    const tmp = `${abs}.agentbox-restore-${randomUUID().slice(0, 8)}`;
    try {
      await fs.copyFile(this.#objectPath(entry.hash!), tmp, fsConstants.COPYFILE_FICLONE);
      await fs.chmod(tmp, entry.mode);
      if (entry.mtimeNs) {
        const seconds = Number(BigInt(entry.mtimeNs) / 1000n) / 1e6;
        await fs.utimes(tmp, seconds, seconds);
      }
      await fs.rename(tmp, abs);
    } catch (error) {
      await fs.rm(tmp, { force: true });
      throw error;
    }
  }

  async #loadCache(): Promise<Map<string, StatKey>> {
    if (this.#cache) return this.#cache;
    try {
      const raw = JSON.parse(await fs.readFile(this.#cacheFile, 'utf8')) as [string, StatKey][];
      this.#cache = new Map(raw);
    } catch {
      // No cache yet (or unreadable): every file is read once, which is always correct.
      this.#cache = new Map();
    }
    return this.#cache;
  }

  async #saveCache(cache: Map<string, StatKey>): Promise<void> {
    this.#cache = cache;
    await writeAtomic(this.#cacheFile, JSON.stringify([...cache]));
  }
}

function statKey(st: import('node:fs').BigIntStats): Omit<StatKey, 'hash'> {
  return {
    ino: st.ino.toString(),
    size: Number(st.size),
    mtimeNs: st.mtimeNs.toString(),
    ctimeNs: st.ctimeNs.toString(),
  };
}

function sameStat(a: Omit<StatKey, 'hash'>, b: Omit<StatKey, 'hash'>): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/** Run `fn` over `items` with at most `limit` calls in flight. */
async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${randomUUID().slice(0, 8)}`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, path);
}
