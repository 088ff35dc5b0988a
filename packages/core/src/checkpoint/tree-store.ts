/**
 * An incremental, content-addressed checkpoint store for a directory the library can read
 * directly. A checkpoint is a manifest (one entry per path) plus objects known by the SHA-256 of
 * their content; only files whose (inode, size, mtime, ctime) changed since the last scan are
 * read, so the cost follows the change, not the tree. The new objects of a checkpoint go into
 * one pack file (./pack.ts); stores written before packs keep each object in its own file
 * (`objects/ab/cdef…`), and both are read. Objects are copies, never hard links, so the store
 * shares no mutable storage with the live tree. Names are kept as binary strings (one char per
 * byte), so names that are not UTF-8 round-trip.
 *
 * Crash safety: packs and manifests are written to a temporary name, flushed and renamed, a
 * pack and its index before the manifest that names its objects, so a checkpoint is listed
 * only once it is whole and a crash at any point leaves earlier checkpoints intact. A delete
 * removes the manifest first and then the packs no manifest needs; a pack mostly of objects
 * no manifest names is written again with only the others. A restore writes a record
 * (`rollback-pending.json`, in the store) before it changes the tree and removes it when done,
 * so a rollback cut short is seen by whoever opens the sandbox next. `verify()` re-parses every
 * manifest and re-hashes every object.
 *
 * The diff, the racy-ctime rule, the restore plan (read-only directories opened first, nothing
 * created through a live symlink) and the manifest schema come from the shared engine
 * (./engine). A manifest read back is validated (and, with `manifestKey`, its HMAC checked);
 * the objects a restore needs are hashed before the tree is touched. A checkpoint that fails
 * is CHECKPOINT_CORRUPT and is not restored.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  constants as fsConstants,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
} from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  CheckpointCorruptError,
  CheckpointNotFoundError,
  InvalidArgumentError,
  noCheckpoint,
} from '../errors.js';
import type { CheckpointStore, InterruptedRollback } from '../sandbox.js';
import type { CheckpointInfo, CheckpointVerifyReport } from '../types.js';
import { readdirOrNone, removeStaleTemps, TEMP_PREFIX, writeAtomic } from './durable.js';
import { diffCapture, isRacy, keyToRecord } from './engine/diff.js';
import {
  CHECKPOINT_ID,
  type Manifest,
  type ManifestEntry,
  parseChecked,
  SHA256,
  treeManifestSchema,
} from './engine/manifest.js';
import { type LiveEntry, planRestore, type RestorePlan } from './engine/plan.js';
import { readRollbackRecord, rollbackRecord } from './engine/rollback-record.js';
import { seal, unseal } from './engine/seal.js';
import { buildVerifyReport } from './engine/verify-report.js';
import { indexFile, type Packed, PackWriter, packFile, readPacks } from './pack.js';

/** Temporary files younger than this may belong to a writer in another process: left alone. */
const STALE_TEMP_MS = 60 * 60 * 1000;

/** Files up to this size are read in one piece; larger ones are streamed. */
const SMALL_FILE_BYTES = 1024 * 1024;

/** A pack whose live objects are less than this share of its bytes is written again without the rest. */
const REPACK_BELOW = 0.5;

/** What the last capture knew of a file: its stat key (absent when too recent to trust) and content hash. */
interface CachedFile {
  key?: string | undefined;
  hash: string;
}

interface ScannedEntry extends ManifestEntry {
  liveKey?: string;
  racy?: boolean;
}

export interface TreeStoreOptions {
  /** The live tree. */
  root: string;
  /** Where manifests and objects live; must be outside `root`. */
  storeDir: string;
  /**
   * Authenticate manifests with an HMAC-SHA256 under this key: a manifest that fails is
   * CHECKPOINT_CORRUPT on restore and left out of list().
   */
  manifestKey?: Uint8Array;
}

export class TreeCheckpointStore implements CheckpointStore {
  readonly #root: string;
  readonly #rootBytes: Buffer;
  /** Objects one file each, as stores before packs wrote them (read and collected, never written). */
  readonly #objects: string;
  readonly #packs: string;
  readonly #manifests: string;
  readonly #cacheFile: string;
  readonly #tmp: string;
  readonly #record: string;
  readonly #key: Uint8Array | undefined;
  #cache: Map<string, CachedFile> | undefined;
  /** Manifests validated (or written) by this process: never re-read, so never re-parsed. */
  readonly #read = new Map<string, Manifest>();
  /** The objects in the store, read once per process: where each lies (undefined: its own file). */
  #known: Map<string, Packed | undefined> | undefined;
  /** Checkpoint operations on one tree run one at a time. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: TreeStoreOptions) {
    if (options.manifestKey !== undefined && options.manifestKey.length < 16)
      throw new InvalidArgumentError('manifestKey must be at least 16 bytes');
    this.#root = options.root;
    this.#rootBytes = Buffer.from(options.root);
    this.#objects = join(options.storeDir, 'objects');
    this.#packs = join(options.storeDir, 'packs');
    this.#manifests = join(options.storeDir, 'manifests');
    this.#cacheFile = join(options.storeDir, 'stat-cache.json');
    this.#tmp = join(options.storeDir, 'tmp');
    this.#record = join(options.storeDir, 'rollback-pending.json');
    this.#key = options.manifestKey;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  create(opts: { label: string | undefined; signal?: AbortSignal | undefined }): Promise<CheckpointInfo> {
    return this.#serial(async () => {
      await fs.mkdir(this.#manifests, { recursive: true });
      const cache = await this.#loadCache();
      const scanned = await this.#scan();
      const known = await this.#knownObjects();
      const files = scanned.filter(
        (e): e is ScannedEntry & { liveKey: string; racy: boolean } =>
          e.type === 'file' && e.liveKey !== undefined,
      );
      const diff = diffCapture(cache, files, (k) => known.has(k.hash));
      for (const { file, known: k } of diff.reuse) file.hash = k.hash;
      let bytesStored = 0;
      const pack = new PackWriter(this.#packs, (hash) => known.has(hash));
      try {
        // One file after another, small ones read synchronously: for files in the page cache
        // that takes half the time of the promise API's four round trips per file. The loop
        // lets other work run every few files (the scan does the same).
        let sinceYield = 0;
        for (const entry of diff.copy) {
          opts.signal?.throwIfAborted();
          const stored = await this.#storeObject(this.#abs(entry.path), entry.size ?? 0, pack);
          entry.hash = stored.hash;
          entry.size = stored.size;
          bytesStored += stored.written;
          sinceYield += 1 + Math.floor(stored.size / 16_384);
          if (sinceYield > 500) {
            sinceYield = 0;
            await new Promise((resolve) => setImmediate(resolve));
          }
        }
        // The new objects must last before a manifest names them.
        for (const [hash, at] of await pack.finish()) known.set(hash, at);
      } catch (error) {
        await pack.abort();
        throw error;
      }
      const nextCache = new Map<string, CachedFile>();
      for (const f of files) nextCache.set(f.path, { key: keyToRecord(f), hash: f.hash! });
      const info: CheckpointInfo = {
        id: `ckpt-${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`,
        label: opts.label,
        createdAt: new Date().toISOString(),
        entries: scanned.length,
        bytesStored,
      };
      const manifest: Manifest = {
        version: 2,
        info,
        entries: scanned.map(({ liveKey: _k, racy: _r, ...entry }) => entry),
      };
      // The checkpoint exists once this rename lands (list() reads only whole `<id>.json` files).
      await writeAtomic(join(this.#manifests, `${info.id}.json`), seal(manifest, this.#key));
      this.#read.set(info.id, manifest);
      await this.#saveCache(nextCache);
      return info;
    });
  }

  restore(id: string, signal?: AbortSignal | undefined): Promise<void> {
    return this.#serial(async () => {
      const manifest = await this.#readManifest(id);
      const cache = await this.#loadCache();
      const live = new Map<string, LiveEntry>((await this.#scan()).map((e) => [e.path, e]));
      const plan = planRestore(manifest.entries, live, {
        owners: false,
        unchanged: (want, have) => {
          const known = cache.get(want.path);
          return (
            !have.racy && known?.key !== undefined && known.key === have.liveKey && known.hash === want.hash
          );
        },
      });
      // Every object the restore reads is hashed first: a mismatch restores nothing.
      const writes = plan.create.filter((c) => c.kind === 'write').map((c) => c.entry);
      await forEachLimit(writes, 8, async (entry) => {
        signal?.throwIfAborted();
        await this.#verifyObject(id, entry.hash!);
      });
      const changes =
        plan.open.length + plan.remove.length + plan.create.length + plan.chmod.length + plan.dirModes.length;
      // From here the tree changes: a crash leaves this record for the next open to see.
      if (changes > 0)
        await writeAtomic(this.#record, seal(rollbackRecord(id), this.#key), { durable: true });

      try {
        await this.#apply(plan, signal);
      } catch (error) {
        // This process lives to report the failure to its caller, who decides what comes next:
        // the record is only for a rollback whose process died (a re-attach would repeat it).
        if (changes > 0) await fs.rm(this.#record, { force: true }).catch(() => {});
        throw error;
      }

      // Files put back are new inodes: read again at the next checkpoint (cost follows the change).
      const nextCache = new Map<string, CachedFile>();
      for (const path of plan.kept) {
        const known = cache.get(path);
        if (known) nextCache.set(path, known);
      }
      await this.#saveCache(nextCache);
      // The tree is the checkpoint's now (a record left by an earlier interrupted rollback goes too).
      await fs.rm(this.#record, { force: true });
    });
  }

  async #apply(plan: RestorePlan<ManifestEntry>, signal: AbortSignal | undefined): Promise<void> {
    {
      const at = (path: string) => this.#abs(path);
      for (const path of plan.open) {
        const st = await fs.lstat(at(path));
        if (st.isDirectory()) await fs.chmod(at(path), (st.mode & 0o7777) | 0o700);
      }
      for (const path of plan.remove) await fs.rm(at(path), { recursive: true, force: true });
      for (const { kind, entry } of plan.create) {
        signal?.throwIfAborted();
        if (kind === 'mkdir') await fs.mkdir(at(entry.path), { mode: 0o700 });
        else if (kind === 'symlink') await fs.symlink(Buffer.from(entry.target!, 'latin1'), at(entry.path));
        else await this.#restoreFile(entry, at(entry.path));
      }
      for (const entry of plan.chmod) await fs.chmod(at(entry.path), entry.mode);
      for (const entry of plan.dirModes) await fs.chmod(at(entry.path), entry.mode);
    }
  }

  /** The checkpoint a rollback was restoring when it was cut short, or undefined when none was. */
  async interruptedRollback(): Promise<InterruptedRollback | undefined> {
    let file: string;
    try {
      file = await fs.readFile(this.#record, 'latin1');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return readRollbackRecord(file, this.#key);
  }

  /**
   * Scrub the store: parse every manifest from disk again (no cached copy) and hash every object
   * a manifest names. Damaged objects are forgotten, so the next checkpoint stores their content again.
   */
  verify(signal?: AbortSignal | undefined): Promise<CheckpointVerifyReport> {
    return this.#serial(async () => {
      const manifests: { id: string; entries: { hash?: string | undefined }[] }[] = [];
      const damagedManifests: { id: string; reason: string }[] = [];
      for (const name of (await readdirOrNone(this.#manifests)).sort()) {
        const id = name.slice(0, -5);
        if (!name.endsWith('.json') || !CHECKPOINT_ID.test(id)) continue;
        signal?.throwIfAborted();
        try {
          const file = await fs.readFile(join(this.#manifests, name), 'latin1');
          const manifest = parseChecked(treeManifestSchema, unseal(file, this.#key, id, {}), id, {});
          manifests.push({ id, entries: manifest.entries });
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
          this.#read.delete(id);
          damagedManifests.push({ id, reason: reasonOf(error) });
        }
      }
      const report = await buildVerifyReport({
        manifests: manifests.map((m) => ({
          id: m.id,
          objects: m.entries.flatMap((e) => (e.hash ? [e.hash] : [])),
        })),
        damagedManifests,
        check: async (objects) => {
          const bad = new Map<string, 'missing' | 'mismatch'>();
          await forEachLimit(objects, 8, async (hash) => {
            signal?.throwIfAborted();
            const got = await this.#hashObject(hash);
            if (got !== hash) bad.set(hash, got === undefined ? 'missing' : 'mismatch');
          });
          return bad;
        },
        interruptedRollback: await this.interruptedRollback(),
      });
      for (const { object } of report.damagedObjects) {
        this.#known?.delete(object);
        for (const [path, cached] of this.#cache ?? []) if (cached.hash === object) this.#cache?.delete(path);
      }
      return report;
    });
  }

  async list(): Promise<CheckpointInfo[]> {
    const infos: CheckpointInfo[] = [];
    for (const name of await readdirOrNone(this.#manifests)) {
      if (!name.endsWith('.json') || !CHECKPOINT_ID.test(name.slice(0, -5))) continue;
      try {
        infos.push((await this.#readManifest(name.slice(0, -5))).info);
      } catch (error) {
        // A checkpoint that fails verification (or went meanwhile) is not offered.
        if (!(error instanceof CheckpointCorruptError || error instanceof CheckpointNotFoundError))
          throw error;
      }
    }
    return infos.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  delete(id: string): Promise<void> {
    return this.#serial(async () => {
      if (!CHECKPOINT_ID.test(id)) throw new CheckpointNotFoundError(noCheckpoint(id));
      try {
        this.#read.delete(id);
        await fs.rm(join(this.#manifests, `${id}.json`));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT')
          throw new CheckpointNotFoundError(noCheckpoint(id), { subject: id });
        throw error;
      }
      await this.#collectGarbage();
    });
  }

  /** Remove objects that no valid manifest refers to: whole packs, and the rest of mostly dead ones. */
  async #collectGarbage(): Promise<void> {
    const live = new Set<string>();
    for (const name of await fs.readdir(this.#manifests)) {
      if (!name.endsWith('.json') || !CHECKPOINT_ID.test(name.slice(0, -5))) continue;
      try {
        for (const e of (await this.#readManifest(name.slice(0, -5))).entries) if (e.hash) live.add(e.hash);
      } catch (error) {
        // A corrupt checkpoint keeps nothing alive.
        if (!(error instanceof CheckpointCorruptError || error instanceof CheckpointNotFoundError))
          throw error;
      }
    }
    // Temporary files a crash left behind (none is ever named by a manifest).
    for (const dir of [this.#objects, this.#packs, this.#manifests, this.#tmp, join(this.#objects, '..')])
      await removeStaleTemps(dir, STALE_TEMP_MS);
    await this.#collectPacks(live);
    for (const prefix of await readdirOrNone(this.#objects)) {
      if (prefix.length !== 2) continue;
      for (const name of await fs.readdir(join(this.#objects, prefix))) {
        if (live.has(prefix + name) || name.startsWith(TEMP_PREFIX)) continue;
        await fs.rm(join(this.#objects, prefix, name), { force: true });
        if (this.#known?.get(prefix + name) === undefined) this.#known?.delete(prefix + name);
      }
    }
  }

  /**
   * Packs with no live object go (index first, so no index names a removed pack). A pack whose
   * live objects fill less than half of it is written again with only those, each hashed on
   * the way (a damaged one is left out, so the next checkpoint stores its content again).
   */
  async #collectPacks(live: ReadonlySet<string>): Promise<void> {
    const known = await this.#knownObjects();
    // Read again here: another process may have added packs since this one read them.
    const packs = await readPacks(this.#packs);
    // An object counts for the pack the store reads it from (the later one, if two hold it).
    const holder = new Map<string, string>();
    for (const [pack, objects] of packs) for (const o of objects) holder.set(o.hash, pack);
    for (const [pack, objects] of packs) {
      const kept = objects.filter((o) => live.has(o.hash) && holder.get(o.hash) === pack);
      const size = (await fs.lstat(packFile(this.#packs, pack)).catch(() => undefined))?.size ?? 0;
      const keptBytes = kept.reduce((sum, o) => sum + o.length, 0);
      if (kept.length > 0 && keptBytes >= size * REPACK_BELOW) continue;
      if (kept.length > 0) {
        const next = new PackWriter(this.#packs, () => false);
        try {
          const file = packFile(this.#packs, pack);
          for (const o of kept) {
            let hash: string | undefined;
            if (o.length <= SMALL_FILE_BYTES) {
              const data = await readRange(file, o.offset, o.length).catch(() => undefined);
              hash = data && createHash('sha256').update(data).digest('hex');
              if (data && hash === o.hash) await next.add(hash, data);
            } else {
              // Streamed; copied before it is hashed, so damaged content lands in the new pack
              // under its own hash, which no manifest names (the next delete drops it).
              const range = { start: o.offset, end: o.offset + o.length - 1 };
              hash = (await next.addFile(file, range).catch(() => undefined))?.hash;
            }
            if (hash !== o.hash) known.delete(o.hash);
          }
          for (const [hash, at] of await next.finish()) known.set(hash, at);
        } catch (error) {
          await next.abort();
          throw error;
        }
      }
      for (const o of objects) if (known.get(o.hash)?.pack === pack) known.delete(o.hash);
      await fs.rm(indexFile(this.#packs, pack), { force: true });
      await fs.rm(packFile(this.#packs, pack), { force: true });
    }
    // A pack whose index never landed (a crash between the two renames) once it is stale.
    const cutoff = Date.now() - STALE_TEMP_MS;
    for (const name of await readdirOrNone(this.#packs)) {
      if (!name.endsWith('.pack') || packs.has(name.slice(0, -5))) continue;
      const st = await fs.lstat(join(this.#packs, name)).catch(() => undefined);
      if (st && st.mtimeMs < cutoff && !(await exists(`${join(this.#packs, name).slice(0, -5)}.idx`)))
        await fs.rm(join(this.#packs, name), { force: true });
    }
  }

  async #readManifest(id: string): Promise<Manifest> {
    if (typeof id !== 'string' || !CHECKPOINT_ID.test(id))
      throw new CheckpointNotFoundError(noCheckpoint(id), { subject: String(id) });
    const path = join(this.#manifests, `${id}.json`);
    let file: string;
    try {
      // Read once per process; later only whether it still exists (another process may delete it).
      const known = this.#read.get(id);
      if (known) return await fs.access(path).then(() => known);
      file = await fs.readFile(path, 'latin1');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new CheckpointNotFoundError(noCheckpoint(id), { subject: id });
      throw error;
    }
    const manifest = parseChecked(treeManifestSchema, unseal(file, this.#key, id, {}), id, {});
    this.#read.set(id, manifest);
    return manifest;
  }

  /** The SHA-256 of an object's content now, or undefined when it cannot be read. */
  async #hashObject(hash: string): Promise<string | undefined> {
    const at = (await this.#knownObjects()).get(hash);
    const digest = createHash('sha256');
    try {
      await pipeline(this.#readObject(hash, at), digest);
    } catch {
      return undefined;
    }
    return digest.digest('hex');
  }

  /** An object's bytes: its range of a pack (a pack cut short gives fewer), or its own file. */
  async *#readObject(hash: string, at: Packed | undefined): AsyncGenerator<Buffer> {
    if (!at) {
      yield* createReadStream(this.#objectPath(hash));
      return;
    }
    const file = packFile(this.#packs, at.pack);
    // An empty range has no stream (its end would come before its start); the pack must still be there.
    if (at.length === 0) await fs.access(file);
    else yield* createReadStream(file, { start: at.offset, end: at.offset + at.length - 1 });
  }

  /** Hash an object of the store; CHECKPOINT_CORRUPT when it is missing or its content differs. */
  async #verifyObject(id: string, hash: string): Promise<void> {
    const got = await this.#hashObject(hash);
    if (got === undefined)
      throw new CheckpointCorruptError(
        `checkpoint ${id} is corrupt: object ${hash} is missing or unreadable`,
        {
          subject: id,
        },
      );
    if (got !== hash)
      throw new CheckpointCorruptError(
        `checkpoint ${id} is corrupt: object ${hash} does not match its hash`,
        {
          subject: id,
        },
      );
  }

  /** A path of the tree (a binary string, `''` for the root) as the bytes to hand to fs. */
  #abs(path: string): Buffer {
    return path ? Buffer.concat([this.#rootBytes, Buffer.from(`/${path}`, 'latin1')]) : this.#rootBytes;
  }

  /** The filesystem's clock now, as the ctime of a file just written in the store. */
  async #clock(): Promise<{ sec: bigint; nsec: bigint }> {
    await fs.mkdir(this.#tmp, { recursive: true });
    const probe = join(this.#tmp, `clock-${randomUUID()}`);
    await fs.writeFile(probe, '');
    try {
      const st = await fs.lstat(probe, { bigint: true });
      return split(st.ctimeNs);
    } finally {
      await fs.rm(probe, { force: true });
    }
  }

  /**
   * Every entry below the root, parents before children, with stat facts for files. Synchronous
   * lstat is several times faster than the promise API for many small calls; the walk yields to
   * the event loop every few hundred directories entries so other work is not starved.
   */
  async #scan(): Promise<ScannedEntry[]> {
    const clock = await this.#clock();
    const out: ScannedEntry[] = [];
    const stack = [''];
    let sinceYield = 0;
    while (stack.length > 0) {
      const rel = stack.pop()!;
      let listed: Buffer[];
      try {
        listed = readdirSync(this.#abs(rel), { encoding: 'buffer' });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (rel === '' || (code !== 'ENOENT' && code !== 'ENOTDIR')) throw error;
        // Removed (or replaced) since its lstat: absent, like an entry gone before its lstat.
        out.splice(
          out.findIndex((e) => e.path === rel),
          1,
        );
        continue;
      }
      const names = listed.map((n) => n.toString('latin1')).sort();
      const subdirs: string[] = [];
      for (const name of names) {
        const path = rel ? `${rel}/${name}` : name;
        const abs = this.#abs(path);
        const st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
        if (!st) continue; // vanished during the scan
        const mode = Number(st.mode & 0o7777n);
        if (st.isDirectory()) {
          out.push({ path, type: 'dir', mode });
          subdirs.push(path);
        } else if (st.isSymbolicLink()) {
          out.push({
            path,
            type: 'symlink',
            mode,
            target: readlinkSync(abs, { encoding: 'buffer' }).toString('latin1'),
          });
        } else if (st.isFile()) {
          out.push({
            path,
            type: 'file',
            mode,
            size: Number(st.size),
            mtimeNs: st.mtimeNs.toString(),
            liveKey: `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`,
            racy: isRacy(split(st.ctimeNs), clock),
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

  async #knownObjects(): Promise<Map<string, Packed | undefined>> {
    if (!this.#known) {
      const known = new Map<string, Packed | undefined>();
      for (const prefix of await readdirOrNone(this.#objects)) {
        if (prefix.length !== 2) continue;
        for (const name of await fs.readdir(join(this.#objects, prefix)))
          if (SHA256.test(prefix + name)) known.set(prefix + name, undefined);
      }
      // Oldest first: where two packs hold an object, the later one is read.
      for (const objects of (await readPacks(this.#packs)).values())
        for (const { hash, ...at } of objects) known.set(hash, at);
      this.#known = known;
    }
    return this.#known;
  }

  /** Copy a file into the pack while hashing it, in one read (small files in one piece, large ones streamed). */
  async #storeObject(
    source: Buffer,
    size: number,
    pack: PackWriter,
  ): Promise<{ hash: string; size: number; written: number }> {
    if (size <= SMALL_FILE_BYTES) {
      const data = readFileSync(source);
      const hash = createHash('sha256').update(data).digest('hex');
      const written = await pack.add(hash, data);
      return { hash, size: data.length, written: written ? data.length : 0 };
    }
    const { hash, length, written } = await pack.addFile(source);
    return { hash, size: length, written: written ? length : 0 };
  }

  /** Replace a file with a fresh copy of its object (a new inode: nothing is shared with the store). */
  async #restoreFile(entry: ManifestEntry, abs: Buffer): Promise<void> {
    const tmp = Buffer.concat([abs, Buffer.from(`.agentbox-restore-${randomUUID().slice(0, 8)}`)]);
    const at = (await this.#knownObjects()).get(entry.hash!);
    try {
      if (at)
        await pipeline(
          this.#readObject(entry.hash!, at),
          createWriteStream(tmp, { flags: 'wx', mode: 0o600 }),
        );
      else await fs.copyFile(this.#objectPath(entry.hash!), tmp, fsConstants.COPYFILE_FICLONE);
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

  async #loadCache(): Promise<Map<string, CachedFile>> {
    if (this.#cache) return this.#cache;
    const cache = new Map<string, CachedFile>();
    try {
      const raw: unknown = JSON.parse(await fs.readFile(this.#cacheFile, 'utf8'));
      // Only a hint: entries of another shape are dropped (their files are read again).
      for (const item of Array.isArray(raw) ? raw : []) {
        const [path, v] = Array.isArray(item) ? item : [];
        if (typeof path === 'string' && typeof v?.hash === 'string' && SHA256.test(v.hash))
          cache.set(path, { key: typeof v.key === 'string' ? v.key : undefined, hash: v.hash });
      }
    } catch {
      // No cache yet (or unreadable): every file is read once, which is always correct.
    }
    this.#cache = cache;
    return cache;
  }

  async #saveCache(cache: Map<string, CachedFile>): Promise<void> {
    this.#cache = cache;
    // Only a hint (a lost or stale cache costs a re-read, never a wrong checkpoint): not flushed.
    await writeAtomic(this.#cacheFile, JSON.stringify([...cache]), { durable: false });
  }
}

/** Nanoseconds since the epoch as seconds and nanoseconds. */
function split(ns: bigint): { sec: bigint; nsec: bigint } {
  const sec = ns / 1_000_000_000n - (ns % 1_000_000_000n < 0n ? 1n : 0n);
  return { sec, nsec: ns - sec * 1_000_000_000n };
}

async function exists(path: string): Promise<boolean> {
  return fs.access(path).then(
    () => true,
    () => false,
  );
}

/** `length` bytes of `file` from `offset` (fewer when the file ends first). */
async function readRange(file: string, offset: number, length: number): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const data = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(data, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return data.subarray(0, done);
  } finally {
    await handle.close();
  }
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

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
