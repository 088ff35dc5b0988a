/**
 * An incremental checkpoint store kept *inside* the sandbox (or on the remote host) and driven
 * only through an `exec` that runs argv there: a POSIX shell and busybox-level tools (find,
 * xargs, stat, tar, sha256sum, cp, mv, chmod, chown, touch, readlink) are all it needs.
 *
 * create: one exec lists the tree with its metadata (type, mode, owner, size, inode, mtime,
 * ctime, symlink targets); the diff against the last known state is made here; a second exec
 * copies only the changed files into a staging directory of the store (tar, in batches) and
 * hashes the copies (sha256sum, in batches); a third drops copies whose content the store
 * already has, files the rest as this checkpoint's pack directory and writes the manifest. A
 * file listed exactly as at this process's last capture keeps the entry it had there, neither
 * parsed nor serialized again: the work done here follows the change as well.
 * Objects are deduplicated by SHA-256 and never shared with the live tree (they are copies,
 * not links). With `frozen` (the backend stops the sandbox's processes around each checkpoint),
 * the changed files go into tar archives instead, one per batch of at most 400 files or 4 MiB,
 * each file hashed in the tree and each archive as written; a restore checks the archives it
 * reads from against the manifest's sums and takes members out by name. Creating one file per
 * batch instead of one per file is most of a first checkpoint's cost on some filesystems.
 * Restore lists the live tree again, diffs it with the manifest and sends one
 * script that removes what is extra, recreates directories and symlinks, copies changed files
 * back (batched tar from the packs; a per-file copy where an object came from another path)
 * and puts back modes, owners and mtimes. So the cost follows the change, not the tree, and
 * the number of processes per checkpoint does not grow with the number of files. The diff, the
 * restore plan, the manifest schema and every script come from the shared engine (./engine).
 *
 * Trust: a manifest read back is validated (and, with `manifestKey`, its HMAC checked) before
 * use; the objects a restore reads are hashed (one batched exec) before the live tree is
 * touched (for archives, the archive's sum of the bytes stored; a file's own sum was taken in
 * the tree, which `frozen` promises cannot change under the copy). A checkpoint that fails
 * either is CHECKPOINT_CORRUPT and is not restored. Hashing
 * and restoring are two execs, and the restore works by path on the live tree: both checks hold
 * only when the sandbox can neither write the store nor run while a restore does.
 *
 * Change detection uses inode, size, mtime and ctime (ns): `touch -d` can set mtime back, not
 * ctime. A file whose ctime is not older than the listing itself (read from a file the
 * listing touches in the store) is not trusted later, since a write in the same clock tick
 * would not show: it is copied again next time.
 *
 * Crash safety: copies are staged under `tmp/`, a pack is renamed into `packs/` (and flushed)
 * before its manifest is written, manifests are written to `tmp/`, flushed and renamed, and a
 * checkpoint exists once its `.info` file does (renamed last; a delete removes it first). A
 * later checkpoint never touches an earlier one's files; a crash leaves only unreferenced
 * files, removed by the next delete. A restore script puts a record (`rollback-pending`) in
 * the store before its first change and removes it after its last, so a rollback cut short is
 * seen by the next re-attach. The script also names its shell in the store, and a listing of the
 * tree waits while that shell runs: a rollback whose caller was cut off from it (a lost SSH
 * connection, a killed process) goes on there, and the next one must not plan from, or write
 * into, a tree it is still changing. The flushes call `sync` with file names (GNU coreutils, or
 * busybox built with its file options), best effort where the sandbox's `sync` has none.
 * `verify()` re-parses every manifest and re-hashes every object in two execs.
 *
 * Names are handled as bytes: paths read from the sandbox are kept as latin1 "binary strings"
 * (one char per byte) and written back the same way (scripts are binary strings too, quoted by
 * core's one quoting function), so any file name round-trips exactly.
 */
import { randomBytes } from 'node:crypto';
import {
  AgentboxError,
  CheckpointCorruptError,
  CheckpointNotFoundError,
  type ErrorContext,
  InvalidArgumentError,
  noCheckpoint,
  SandboxUnavailableError,
} from '../errors.js';
import type { CheckpointCreateOptions, CheckpointStore, InterruptedRollback } from '../sandbox.js';
import { toBinary } from '../shell-quote.js';
import type { CheckpointInfo, CheckpointVerifyReport, DamagedManifest } from '../types.js';
import { diffCapture, keyToRecord, type ScannedFile } from './engine/diff.js';
import {
  CHECKPOINT_ID,
  checkpointInfoSchema,
  type EntryType,
  type ExecManifest,
  type ExecManifestEntry,
  execManifestSchema,
  isNormalPath,
  manifestJson,
  parseChecked,
} from './engine/manifest.js';
import { compareBytes, type LiveEntry, planRestore } from './engine/plan.js';
import { readRollbackRecord, rollbackRecord } from './engine/rollback-record.js';
import {
  archiveStageScript,
  BATCH,
  COMMIT_READER,
  commitInput,
  type Dirs,
  gcScript,
  RESTORE_OBJECT_MISMATCH,
  RESTORE_OBJECT_MISSING,
  RESTORE_OWNER,
  ROLLBACK_RECORD,
  restoreScript,
  stageScript,
  VERIFY_INLINE_UP_TO,
  verifyScript,
  WAIT_FOR_RESTORE,
} from './engine/script.js';
import { asciiJson, seal, sealJson, unseal } from './engine/seal.js';
import { buildVerifyReport } from './engine/verify-report.js';

export interface StoreExecResult {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

/** Run argv where the tree lives (as a user that may read and restore every file of it), to the end. */
export type StoreExec = (
  argv: readonly string[],
  opts: { stdin?: Uint8Array; signal?: AbortSignal | undefined },
) => Promise<StoreExecResult>;

export interface ExecCheckpointStoreOptions {
  exec: StoreExec;
  /** Absolute path of the tree to checkpoint, as `exec` sees it. */
  root: string;
  /** Absolute path of the store directory, outside `root`; best not readable by the sandbox user. */
  storeDir: string;
  /** Restore owners (uid/gid) too; needs an exec that may chown (root, or CAP_CHOWN). Default true. */
  preserveOwnership?: boolean;
  /**
   * Authenticate manifests: each one written carries an HMAC-SHA256 with this key, each one read
   * is checked (a failure is CHECKPOINT_CORRUPT, and list() leaves it out). Keep the key where
   * the sandbox cannot read it.
   */
  manifestKey?: Uint8Array;
  /** Backend and sandbox named in errors. */
  context?: ErrorContext;
  /**
   * The backend stops every process of the sandbox while a checkpoint is taken (and nothing
   * else writes the tree): the tree's files cannot change under the copy. Changed files are
   * then archived into a few tar files (one per batch) and hashed in the tree, instead of copied
   * one by one: creating a file can cost more than copying its content. Default false.
   */
  frozen?: boolean;
}

/** Files and bytes per archive of a frozen store: a restore hashes each archive it reads from whole. */
const ARCHIVE_FILES = BATCH;
const ARCHIVE_BYTES = 4 * 1024 * 1024;

interface Scanned extends ExecManifestEntry {
  /** Stat key now (files), and whether it is too recent to be trusted later. */
  liveKey?: string;
  racy?: boolean;
  /** Files: the listing's record of it, every stat field and the name, as the listing printed it. */
  record?: string;
}

/**
 * The last capture of this process, kept so that the next one costs what changed: a file whose
 * listing record is the same text as then (every stat field, ctime to the nanosecond, and the
 * name) gets the very entry it had, not parsed, diffed or serialized again.
 */
interface LastCapture {
  /** The manifest's entries, in its order. */
  entries: ExecManifestEntry[];
  /** Each entry's ASCII JSON, as sealed into the manifest. */
  json: string[];
  /** Each entry's listing record, for the files whose entry can be carried over. */
  records: (string | undefined)[];
  /** Those records → index in `entries`. */
  byRecord: Map<string, number>;
}

interface StoredObject {
  pack: string;
  path: string;
  /** The archive of the pack it is a member of (absent: a file of the pack). */
  tar?: number | undefined;
  /** mode:uid:gid:mtime the copy was made with. */
  meta: string;
}

/** The file of the store (below `packs/`) an object lies in: its own, or its archive. */
function storedFile(
  object: { pack: string; path?: string | undefined; tar?: number | undefined },
  path: string,
): string {
  return object.tar === undefined
    ? `${object.pack}/${object.path ?? path}`
    : `${object.pack}/${object.tar}.tar`;
}

// One walk of the tree, its names piped to stat as they come (find and stat run at once: with
// BusyBox ~1.5x faster than find waiting for each batch of stat), and readlink for symlinks in
// the same walk, into a file of its own (two writers on one pipe would cut each other's
// records). Records come in batches, in any order. Both exit codes are reported: either failing
// means a file went while it was listed. TZ is set because stat formats %z through localtime, which without TZ
// looks for /etc/localtime again for every file: twice the cost of the listing.
const SCAN = `n=$1 f=$3 s=$4
export TZ=UTC0
l="$s/tmp/links-$n"
mkdir -p -- "$s/tmp" && : > "$s/tmp/clock-$n" && : > "$l" || { printf 'X%s store\\n' "$n"; exit 0; }
${WAIT_FOR_RESTORE}
[ "$busy" = 0 ] || { rm -f -- "$s/tmp/clock-$n" "$l"; printf 'X%s busy\\n' "$n"; exit 0; }
printf 'N%s %s\\n' "$n" "$(stat -c '%Z %z' -- "$s/tmp/clock-$n")"
rm -f -- "$s/tmp/clock-$n"
cd -- "$2" || { rm -f -- "$l"; printf 'X%s root\\n' "$n"; exit 0; }
exec 4>&1
codes=$( { { find . -mindepth 1 \\( -type f -o -type d -o -type l \\) -print0 -type l -exec sh -c \\
  'l=$1 n=$2; shift 2; for x; do printf "\\nL%s %s\\037" "$n" "$x"; readlink -- "$x"; done >> "$l"' sh "$l" "$n" {} +
  echo $? >&3; } | { xargs -0 -r stat -c "$f" -- >&4; echo $? >&3; }; } 3>&1 )
cat -- "$l" && rm -f -- "$l"
e=0
for c in $codes; do [ "$c" = 0 ] || e=$c; done
p=
[ ! -e "$s/${ROLLBACK_RECORD}" ] || p=' P'
printf '\\nE%s %s%s\\n' "$n" "$e" "$p"`;

export class ExecCheckpointStore implements CheckpointStore {
  readonly #exec: StoreExec;
  readonly #dirs: Dirs;
  readonly #root: string;
  readonly #store: string;
  readonly #owners: boolean;
  readonly #key: Uint8Array | undefined;
  readonly #context: ErrorContext;
  readonly #archives: boolean;
  /** `<pack>/<k>` → the SHA-256 of that archive as stored. */
  readonly #tars = new Map<string, string>();
  /** path → its entry at the last capture (or carried through a restore), for change detection. */
  #cache: Map<string, ExecManifestEntry> | undefined;
  /** This process's last capture: what the next one carries over unchanged. */
  #last: LastCapture | undefined;
  /** Content the store has: hash → where, and with which metadata the copy was made. */
  #objects = new Map<string, StoredObject>();
  readonly #manifests = new Map<string, ExecManifest>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ExecCheckpointStoreOptions) {
    for (const [name, value] of [
      ['root', options.root],
      ['storeDir', options.storeDir],
    ] as const) {
      if (typeof value !== 'string' || !value.startsWith('/') || value.includes('\0'))
        throw new InvalidArgumentError(`${name} must be an absolute path`, options.context ?? {});
    }
    const root = options.root.replace(/\/+$/, '') || '/';
    const store = options.storeDir.replace(/\/+$/, '') || '/';
    if (store === root || store.startsWith(`${root}/`) || root === '/')
      throw new InvalidArgumentError(
        'the checkpoint store must be outside the tree it saves',
        options.context ?? {},
      );
    if (options.manifestKey !== undefined && options.manifestKey.length < 16)
      throw new InvalidArgumentError('manifestKey must be at least 16 bytes', options.context ?? {});
    this.#exec = options.exec;
    this.#root = root;
    this.#store = store;
    this.#dirs = { root: toBinary(root), store: toBinary(store) };
    this.#owners = options.preserveOwnership ?? true;
    this.#key = options.manifestKey;
    this.#context = options.context ?? {};
    this.#archives = options.frozen ?? false;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  create(opts: CheckpointCreateOptions): Promise<CheckpointInfo> {
    return this.#serial(async () => {
      const { signal } = opts;
      if (opts.label !== undefined && typeof opts.label !== 'string')
        throw new InvalidArgumentError('label must be a string', {
          ...this.#context,
          operation: 'checkpoint',
        });
      const cache = await this.#loadState(signal);
      const last = this.#last;
      const { entries: scanned, carried } = await this.#scan(signal, last && { last, cache });
      const files = scanned.filter((e): e is Scanned & ScannedFile => e.type === 'file');
      const diff = diffCapture(cache, files, (k) => k.hash !== undefined && k.object !== undefined);
      for (const { file, known } of diff.reuse) {
        file.hash = known.hash;
        file.object = known.object;
        if (known.exact) file.exact = true;
      }
      const toCopy = diff.copy;

      const n = randomBytes(8).toString('hex');
      const stage = `tmp/stage-${n}`;
      let bytesStored = 0;
      const duplicates: string[] = [];
      const vanished = new Set<string>();
      /** Archives of this pack that hold an object kept (the others go at the commit). */
      const keptArchives = new Set<number>();
      const archives = new Map<number, string>();
      if (toCopy.length > 0) {
        const copied = this.#archives
          ? await this.#stageArchives(toCopy, stage, n, signal)
          : { hashes: await this.#stage(toCopy, stage, n, signal), archiveOf: undefined, archives };
        for (const [k, hash] of copied.archives) archives.set(k, hash);
        for (const entry of toCopy) {
          const got = copied.hashes.get(entry.path);
          if (!got) {
            vanished.add(entry.path);
            continue;
          }
          entry.hash = got;
          const meta = metaOf(entry);
          const have = this.#objects.get(got);
          if (have) {
            // The store has this content already: keep the older copy, drop the new one.
            if (!copied.archiveOf) duplicates.push(entry.path);
            entry.object = {
              pack: have.pack,
              ...(have.path === entry.path ? {} : { path: have.path }),
              ...(have.tar === undefined ? {} : { tar: have.tar }),
            };
            if (have.path === entry.path && have.meta === meta) entry.exact = true;
          } else {
            const tar = copied.archiveOf?.get(entry.path);
            this.#objects.set(got, { pack: n, path: entry.path, tar, meta });
            entry.object = tar === undefined ? { pack: n } : { pack: n, tar };
            if (tar !== undefined) keptArchives.add(tar);
            entry.exact = true;
            // An archive's bytes are counted whole below (a copy no entry refers to stays in it).
            if (tar === undefined) bytesStored += entry.size ?? 0;
          }
        }
        for (const [k, hash] of archives) {
          if (keptArchives.has(k)) this.#tars.set(`${n}/${k}`, hash);
          else duplicates.push(`${k}.tar`);
        }
        if (copied.archiveOf)
          for (const entry of toCopy) {
            const k = copied.archiveOf.get(entry.path);
            if (k !== undefined && keptArchives.has(k)) bytesStored += entry.size ?? 0;
          }
      }

      // The copies are in the store: the rest only writes the store. The thaw's request goes out
      // before the manifest's CPU-bound work below, not after it.
      if (opts.treeRead) {
        opts.treeRead();
        await new Promise((resolve) => setImmediate(resolve));
      }
      const fresh = scanned.filter((e) => !vanished.has(e.path));
      const next = mergeCapture(last, carried, fresh);
      const { entries } = next;
      const info: CheckpointInfo = {
        id: `ckpt-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`,
        label: opts.label,
        createdAt: new Date().toISOString(),
        entries: entries.length,
        bytesStored,
      };
      const tars: Record<string, string> = {};
      for (const e of entries) {
        if (e.object?.tar === undefined) continue;
        const key = `${e.object.pack}/${e.object.tar}`;
        const hash = this.#tars.get(key);
        if (!hash) throw this.#error(`the store lost track of archive ${key}`, 'checkpoint');
        tars[key] = hash;
      }
      const manifest: ExecManifest = {
        version: 2,
        info,
        entries,
        ...(Object.keys(tars).length > 0 ? { tars } : {}),
      };
      const kept = archives.size > 0 ? keptArchives.size : toCopy.length - vanished.size - duplicates.length;
      await this.#commit(
        manifest,
        manifestJson(manifest, next.json),
        toCopy.length > 0 ? { stage, pack: n, duplicates, kept } : undefined,
        signal,
      );
      this.#manifests.set(info.id, manifest);
      this.#cache = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.path, e]));
      this.#last = next;
      return info;
    });
  }

  restore(id: string, signal: AbortSignal | undefined): Promise<void> {
    return this.#serial(async () => {
      const manifest = await this.#readManifest(id, 'rollback', signal);
      const cache = await this.#loadState(signal);
      const scan = await this.#scan(signal);
      const live = new Map<string, LiveEntry>(scan.entries.map((e) => [e.path, e]));
      const plan = planRestore(manifest.entries, live, {
        owners: this.#owners,
        unchanged: (want, have) => {
          if (have.racy || have.liveKey === undefined) return false;
          const cached = cache.get(want.path);
          return (
            (cached?.key !== undefined && cached.key === have.liveKey && cached.hash === want.hash) ||
            (want.key !== undefined && want.key === have.liveKey)
          );
        },
      });
      // Every object the restore reads is hashed first: a mismatch restores nothing. A few are
      // checked by the restore script itself, before its first change (one exec fewer).
      const objects = objectHashes(
        manifest,
        plan.create.filter((c) => c.kind === 'write').map((c) => c.entry),
      );
      const inline = objects.size <= VERIFY_INLINE_UP_TO;
      if (!inline) await this.#verify(id, objects, signal);
      const script = restoreScript(this.#dirs, plan, {
        owners: this.#owners,
        nonce: randomBytes(8).toString('hex'),
        // Left behind by a script cut short: the next re-attach sees it.
        record: seal(rollbackRecord(id), this.#key),
        ...(inline ? { verify: objects } : {}),
      });
      const dropRecord = async () => {
        const r = await this.#exec(
          ['sh', '-c', 'rm -f -- "$1/$2" "$1/$3"', 'sh', this.#store, ROLLBACK_RECORD, RESTORE_OWNER],
          {},
        );
        if (r.exitCode !== 0) throw this.#error(`rollback to ${id} failed: ${text(r.stderr)}`, 'rollback');
      };
      if (script) {
        const r = await this.#exec(['sh', '-s'], { stdin: script, signal });
        if (r.exitCode === RESTORE_OBJECT_MISSING || r.exitCode === RESTORE_OBJECT_MISMATCH)
          throw corruptCheckpoint(
            id,
            r.exitCode === RESTORE_OBJECT_MISSING
              ? 'an object is missing'
              : 'an object does not match its hash',
            this.#context,
          );
        if (r.exitCode !== 0) {
          // This process lives to report the failure to its caller: the record is only for a
          // rollback whose process died (a re-attach repeats it), so it goes.
          await dropRecord().catch(() => {});
          throw this.#error(`rollback to ${id} failed (exit ${r.exitCode}): ${text(r.stderr)}`, 'rollback');
        }
      } else if (scan.pending) {
        // The tree is already the checkpoint's: the record of an earlier cut-short rollback goes.
        await dropRecord();
      }
      // Files put back are new inodes: they are hashed again at the next checkpoint (cost follows the change).
      const next = new Map<string, ExecManifestEntry>();
      for (const path of plan.kept) {
        const entry = cache.get(path);
        if (entry) next.set(path, entry);
      }
      this.#cache = next;
    });
  }

  list(): Promise<CheckpointInfo[]> {
    return this.#serial(() => this.#list(undefined));
  }

  /** The checkpoint a rollback was restoring when it was cut short, or undefined when none was. */
  interruptedRollback(signal?: AbortSignal | undefined): Promise<InterruptedRollback | undefined> {
    return this.#serial(async () => {
      const r = await this.#exec(
        ['sh', '-c', '[ -e "$1/$2" ] || exit 3; cat -- "$1/$2"', 'sh', this.#store, ROLLBACK_RECORD],
        { signal },
      );
      if (r.exitCode === 3) return undefined;
      if (r.exitCode !== 0)
        throw this.#error(`reading the checkpoint store failed: ${text(r.stderr)}`, 'open');
      return readRollbackRecord(Buffer.from(r.stdout).toString('latin1'), this.#key);
    });
  }

  /**
   * Scrub the store in two execs: read every info and manifest file (parsed here, none from a
   * cache), then hash every object a manifest names. Damaged objects are forgotten, so the next
   * checkpoint stores their content again.
   */
  verify(signal?: AbortSignal | undefined): Promise<CheckpointVerifyReport> {
    return this.#serial(async () => {
      const n = randomBytes(8).toString('hex');
      const r = await this.#exec(
        [
          'sh',
          '-c',
          [
            'cd -- "$1/checkpoints" 2>/dev/null || { printf "\\n%s E\\n" "$2"; exit 0; }',
            'for f in *.info; do [ -f "$f" ] || continue; i=${f%.info}',
            '  printf "\\n%s I %s\\n" "$2" "$i"; cat -- "$f"',
            '  if [ -f "$i.manifest" ]; then printf "\\n%s M %s\\n" "$2" "$i"; cat -- "$i.manifest"; fi',
            'done',
            'if [ -e "$1/$3" ]; then printf "\\n%s R\\n" "$2"; cat -- "$1/$3"; fi',
            'printf "\\n%s E\\n" "$2"',
          ].join('\n'),
          'sh',
          this.#store,
          n,
          ROLLBACK_RECORD,
        ],
        { signal },
      );
      const out = Buffer.from(r.stdout).toString('latin1');
      if (r.exitCode !== 0 || !out.endsWith(`\n${n} E\n`))
        throw this.#error(`reading the checkpoint store failed: ${text(r.stderr)}`, 'verifyCheckpoints');
      const infos = new Map<string, string>();
      const manifestFiles = new Map<string, string>();
      let record: string | undefined;
      for (const part of out
        .slice(0, -(n.length + 4))
        .split(`\n${n} `)
        .slice(1)) {
        const nl = part.indexOf('\n');
        const [tag, id = ''] = part.slice(0, nl).split(' ');
        const body = part.slice(nl + 1);
        if (tag === 'I') infos.set(id, body);
        else if (tag === 'M') manifestFiles.set(id, body);
        else if (tag === 'R') record = body;
      }
      const context = { ...this.#context, operation: 'verifyCheckpoints' };
      const manifests: ExecManifest[] = [];
      const damagedManifests: DamagedManifest[] = [];
      for (const [id, info] of infos) {
        if (!CHECKPOINT_ID.test(id)) continue; // not a checkpoint of this store
        try {
          parseChecked(checkpointInfoSchema, unseal(info, this.#key, id, context), id, context);
          const file = manifestFiles.get(id);
          if (file === undefined)
            throw new CheckpointCorruptError(`checkpoint ${id} is corrupt: its manifest is missing`, context);
          manifests.push(parseChecked(execManifestSchema, unseal(file, this.#key, id, context), id, context));
        } catch (error) {
          if (!(error instanceof CheckpointCorruptError)) throw error;
          this.#manifests.delete(id);
          damagedManifests.push({ id, reason: error.message });
        }
      }
      const objectOf = (e: ExecManifestEntry) => storedFile(e.object!, e.path);
      const hashOf = new Map<string, string>();
      for (const m of manifests)
        for (const [file, hash] of objectHashes(
          m,
          m.entries.filter((e) => e.object && e.hash),
        ))
          hashOf.set(file, hash);
      const report = await buildVerifyReport({
        manifests: manifests.map((m) => ({
          id: m.info.id,
          objects: m.entries.flatMap((e) => (e.object && e.hash ? [objectOf(e)] : [])),
        })),
        damagedManifests,
        check: (objects) => this.#hashAll(objects, hashOf, signal),
        interruptedRollback: record === undefined ? undefined : readRollbackRecord(record, this.#key),
      });
      const damaged = new Set(report.damagedObjects.map((o) => o.object));
      for (const [hash, object] of this.#objects)
        if (damaged.has(storedFile(object, object.path))) this.#objects.delete(hash);
      for (const [path, entry] of this.#cache ?? [])
        if (entry.object && damaged.has(objectOf(entry))) this.#cache?.delete(path);
      return report;
    });
  }

  /** Hash `objects` (`pack/path`) in one exec; answers those missing or not matching `want`. */
  async #hashAll(
    objects: readonly string[],
    want: ReadonlyMap<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<Map<string, 'missing' | 'mismatch'>> {
    const bad = new Map<string, 'missing' | 'mismatch'>();
    if (objects.length === 0) return bad;
    const n = randomBytes(8).toString('hex');
    const r = await this.#exec(['sh', '-s'], { stdin: verifyScript(this.#dirs, objects, n, true), signal });
    const out = Buffer.from(r.stdout).toString('latin1');
    if (r.exitCode === 3) {
      for (const object of objects) bad.set(object, 'missing');
      return bad;
    }
    if (r.exitCode !== 0 || !out.endsWith(`D${n}\n`))
      throw this.#error(`hashing the checkpoint store failed: ${text(r.stderr)}`, 'verifyCheckpoints');
    const got = batchedSums(out, n, objects);
    for (const object of objects) {
      const hash = got.get(object);
      if (hash === undefined) bad.set(object, 'missing');
      else if (hash !== want.get(object)) bad.set(object, 'mismatch');
    }
    return bad;
  }

  delete(id: string): Promise<void> {
    return this.#serial(async () => {
      await this.#exists(id, 'deleteCheckpoint');
      const r = await this.#exec(
        [
          'sh',
          '-c',
          'rm -f -- "$1/checkpoints/$2.info" && rm -f -- "$1/checkpoints/$2.manifest"',
          'sh',
          this.#store,
          id,
        ],
        {},
      );
      if (r.exitCode !== 0) throw this.#error(`deleting ${id} failed: ${text(r.stderr)}`, 'deleteCheckpoint');
      this.#manifests.delete(id);
      await this.#collectGarbage();
    });
  }

  /** Hash `want`'s objects (`pack/path` → hash) in one exec; any mismatch is CHECKPOINT_CORRUPT. */
  async #verify(
    id: string,
    want: ReadonlyMap<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (want.size === 0) return;
    const objects = [...want.keys()];
    const n = randomBytes(8).toString('hex');
    const r = await this.#exec(['sh', '-s'], { stdin: verifyScript(this.#dirs, objects, n), signal });
    const out = Buffer.from(r.stdout).toString('latin1');
    const corrupt = (why: string) => corruptCheckpoint(id, why, this.#context);
    if (r.exitCode === 3 || r.exitCode === 4) throw corrupt(`an object is missing (${text(r.stderr)})`);
    if (r.exitCode !== 0 || !out.endsWith(`D${n}\n`))
      throw this.#error(
        `verifying checkpoint ${id} failed (exit ${r.exitCode}): ${text(r.stderr)}`,
        'rollback',
      );
    const got = batchedSums(out, n, objects);
    for (const [object, hash] of want)
      if (got.get(object) !== hash) throw corrupt(`object ${JSON.stringify(object)} does not match its hash`);
  }

  async #list(signal: AbortSignal | undefined): Promise<CheckpointInfo[]> {
    const n = randomBytes(8).toString('hex');
    const r = await this.#exec(
      [
        'sh',
        '-c',
        'for f in "$1"/checkpoints/*.info; do [ -f "$f" ] || continue; printf "\\n%s %s\\n" "$2" "${f##*/}"; cat -- "$f"; done',
        'sh',
        this.#store,
        n,
      ],
      { signal },
    );
    if (r.exitCode !== 0)
      throw this.#error(`listing checkpoints failed: ${text(r.stderr)}`, 'listCheckpoints');
    const infos: CheckpointInfo[] = [];
    for (const record of Buffer.from(r.stdout).toString('latin1').split(`\n${n} `).slice(1)) {
      const nl = record.indexOf('\n');
      const name = record.slice(0, nl);
      const id = name.endsWith('.info') ? name.slice(0, -5) : '';
      try {
        if (!CHECKPOINT_ID.test(id)) continue;
        const body = unseal(record.slice(nl + 1), this.#key, id, this.#context);
        infos.push(parseChecked(checkpointInfoSchema, body, id, this.#context));
      } catch (error) {
        // A checkpoint that fails verification is not offered.
        if (!(error instanceof CheckpointCorruptError)) throw error;
      }
    }
    return infos.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** CHECKPOINT_NOT_FOUND unless the checkpoint exists; a corrupt one exists (and may be deleted). */
  async #exists(id: string, operation: string): Promise<void> {
    try {
      await this.#readManifest(id, operation, undefined);
    } catch (error) {
      if (!(error instanceof CheckpointCorruptError)) throw error;
    }
  }

  async #readManifest(id: string, operation: string, signal: AbortSignal | undefined): Promise<ExecManifest> {
    if (typeof id !== 'string' || !CHECKPOINT_ID.test(id))
      throw new CheckpointNotFoundError(noCheckpoint(id), {
        ...this.#context,
        operation,
        subject: id,
      });
    const cached = this.#manifests.get(id);
    if (cached) return cached;
    const r = await this.#exec(
      [
        'sh',
        '-c',
        '[ -f "$1/checkpoints/$2.info" ] || exit 3; cat -- "$1/checkpoints/$2.manifest"',
        'sh',
        this.#store,
        id,
      ],
      { signal },
    );
    if (r.exitCode === 3)
      throw new CheckpointNotFoundError(noCheckpoint(id), {
        ...this.#context,
        operation,
        subject: id,
      });
    if (r.exitCode !== 0) throw this.#error(`reading checkpoint ${id} failed: ${text(r.stderr)}`, operation);
    const context = { ...this.#context, operation };
    const body = unseal(Buffer.from(r.stdout).toString('latin1'), this.#key, id, context);
    const manifest = parseChecked(execManifestSchema, body, id, context);
    this.#manifests.set(id, manifest);
    this.#learn(manifest);
    return manifest;
  }

  /** Remember the objects a manifest refers to, for deduplication. */
  #learn(manifest: ExecManifest): void {
    for (const [key, hash] of Object.entries(manifest.tars ?? {}))
      if (!this.#tars.has(key)) this.#tars.set(key, hash);
    for (const e of manifest.entries) {
      if (!e.hash || !e.object || this.#objects.has(e.hash)) continue;
      const path = e.object.path ?? e.path;
      this.#objects.set(e.hash, {
        pack: e.object.pack,
        path,
        tar: e.object.tar,
        meta: e.exact ? metaOf(e) : '',
      });
    }
  }

  /** The last capture's entries, so that a process that re-attaches does not copy everything again. */
  async #loadState(signal: AbortSignal | undefined): Promise<Map<string, ExecManifestEntry>> {
    if (this.#cache) return this.#cache;
    const latest = (await this.#list(signal)).at(-1);
    let entries: ExecManifestEntry[] = [];
    if (latest) {
      try {
        entries = (await this.#readManifest(latest.id, 'checkpoint', signal)).entries;
      } catch (error) {
        // A corrupt latest checkpoint only costs a full copy.
        if (!(error instanceof CheckpointCorruptError)) throw error;
      }
    }
    this.#cache = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.path, e]));
    return this.#cache;
  }

  /**
   * List the live tree: every file, directory and symlink below the root, parents first. With
   * `reuse`, a file whose record is as the last capture listed it (and whose entry the change
   * cache still holds) is not parsed: it is marked in `carried` (by its index in the last
   * capture) instead of listed in `entries`.
   */
  async #scan(
    signal: AbortSignal | undefined,
    reuse?: { last: LastCapture; cache: ReadonlyMap<string, ExecManifestEntry> },
    attempt = 1,
  ): Promise<{ entries: Scanned[]; pending: boolean; carried: Uint8Array | undefined }> {
    const n = randomBytes(8).toString('hex');
    // Only the ctime is read to the nanosecond (%z): no one can write a file without moving it,
    // and a second date (%y) made the listing's output 38% longer for nothing.
    const format = `\nR${n} %f %s %i %u %g %Y %Z %z\x1f%n`;
    const r = await this.#exec(['sh', '-c', SCAN, 'sh', n, this.#root, format, this.#store], { signal });
    const out = Buffer.from(r.stdout).toString('latin1');
    if (out.startsWith(`X${n} root`))
      throw this.#error(`the tree to checkpoint (${this.#root}) does not exist`, 'checkpoint');
    if (out.startsWith(`X${n} busy`))
      throw new SandboxUnavailableError(
        'a rollback started earlier (by a process cut off from it) is still changing the tree after 120 s; try again later',
        { ...this.#context, operation: 'checkpoint' },
      );
    if (out.startsWith(`X${n} store`))
      throw this.#error(
        `the checkpoint store ${this.#store} is not writable: ${text(r.stderr)}`,
        'checkpoint',
      );
    const header = new RegExp(`^N${n} (\\d+) \\S+ (\\S+) \\S+\\n`).exec(out);
    const end = new RegExp(`\\nE${n} (\\d+)( P)?\\n$`).exec(out);
    if (r.exitCode !== 0 || !header || !end)
      throw this.#error(`listing ${this.#root} failed (exit ${r.exitCode}): ${text(r.stderr)}`, 'checkpoint');
    if (end[1] !== '0') {
      // A file removed while it was listed makes stat fail; list again before giving up.
      if (attempt < 3) return this.#scan(signal, reuse, attempt + 1);
      throw this.#error(`listing ${this.#root} failed: ${text(r.stderr)}`, 'checkpoint');
    }
    // The store's clock at the start of the listing: a file changed in that tick or later is not trusted.
    const clock = `${header[1]!.padStart(12, '0')}.${nanos(header[2]!)}`;
    // [before the first record, tag, record, tag, record, …]: R is a stat record, L a symlink's target.
    const parts = out.slice(header[0].length, end.index).split(new RegExp(`\\n([RL])${n} `));
    if (parts[0] !== '') throw this.#error('unexpected output from the tree listing', 'checkpoint');
    const stats: string[] = [];
    const targets = new Map<string, string>();
    for (let i = 1; i < parts.length; i += 2) {
      const record = parts[i + 1]!;
      if (parts[i] === 'R') {
        stats.push(record);
        continue;
      }
      const sep = record.indexOf('\x1f');
      let target = record.slice(sep + 1);
      if (target.endsWith('\n')) target = target.slice(0, -1);
      targets.set(relative(record.slice(0, sep), this.#context), target);
    }
    const entries: Scanned[] = [];
    const carried = reuse && new Uint8Array(reuse.last.entries.length);
    for (const record of stats) {
      if (reuse && carried) {
        const at = reuse.last.byRecord.get(record);
        // The cache check: a rollback or a garbage collection since may have dropped the entry.
        if (at !== undefined && reuse.cache.get(reuse.last.entries[at]!.path) === reuse.last.entries[at]) {
          carried[at] = 1;
          continue;
        }
      }
      const sep = record.indexOf('\x1f');
      let name = record.slice(sep + 1);
      if (name.endsWith('\n')) name = name.slice(0, -1);
      const f = record.slice(0, sep).split(' ');
      // %f %s %i %u %g %Y %Z %z(3 words)
      if (f.length !== 10)
        throw this.#error(`unexpected stat output for ${JSON.stringify(name)}`, 'checkpoint');
      const raw = Number.parseInt(f[0]!, 16);
      const fmt = raw & 0o170000;
      const type: EntryType | undefined =
        fmt === 0o100000 ? 'file' : fmt === 0o040000 ? 'dir' : fmt === 0o120000 ? 'symlink' : undefined;
      if (!type) continue; // sockets, FIFOs and devices are not captured
      const path = relative(name, this.#context);
      const mode = raw & 0o7777;
      const uid = Number(f[3]);
      const gid = Number(f[4]);
      // Each kind made whole at once: one object shape per kind for the diff's 100,000 lookups.
      if (type === 'file') {
        const ctime = `${f[6]}.${nanos(f[8]!)}`;
        entries.push({
          path,
          type,
          mode,
          uid,
          gid,
          size: Number(f[1]),
          mtimeSec: Number(f[5]),
          liveKey: `${f[2]}:${f[1]}:${f[5]}:${ctime}`,
          racy: ctime.padStart(22, '0') >= clock,
          record,
        });
      } else if (type === 'symlink') {
        const target = targets.get(path);
        if (target === undefined) continue; // removed between the two listings
        entries.push({ path, type, mode, uid, gid, target });
      } else entries.push({ path, type, mode, uid, gid });
    }
    entries.sort((a, b) => compareBytes(a.path, b.path));
    // Whether the record of a cut-short rollback is in the store.
    return { entries, pending: end[2] !== undefined, carried };
  }

  /**
   * Copy files into `stage` (tar, batched) and hash the copies (sha256sum, batched): the hash
   * is of exactly the bytes kept. Returns path → hash; files that vanished meanwhile are absent.
   */
  async #stage(
    files: Scanned[],
    stage: string,
    n: string,
    signal: AbortSignal | undefined,
  ): Promise<Map<string, string>> {
    const paths = files.map((f) => f.path);
    const r = await this.#exec(['sh', '-s'], { stdin: stageScript(this.#dirs, stage, paths, n), signal });
    const out = Buffer.from(r.stdout).toString('latin1');
    if (r.exitCode !== 0 || !out.endsWith(`D${n}\n`))
      throw this.#error(
        `copying changed files into the store failed (exit ${r.exitCode}): ${text(r.stderr)}`,
        'checkpoint',
      );
    const sections = out
      .slice(0, -(n.length + 2))
      .split(`B${n}\n`)
      .slice(1);
    const batches = Math.ceil(paths.length / BATCH);
    if (sections.length !== batches)
      throw this.#error('unexpected output from the store script', 'checkpoint');
    const hashes = new Map<string, string>();
    for (let i = 0; i < batches; i++)
      parseSums(
        sections[i]!,
        paths.slice(i * BATCH, (i + 1) * BATCH).map((p) => `./${p}`),
        hashes,
      );
    return hashes;
  }

  /**
   * Archive files into `stage`, one tar per batch, hashing each file in the tree and each archive
   * as written: for a frozen sandbox, whose files cannot change meanwhile. Returns path → hash,
   * path → its archive, and archive → hash; files that vanished are absent.
   */
  async #stageArchives(
    files: Scanned[],
    stage: string,
    n: string,
    signal: AbortSignal | undefined,
  ): Promise<{ hashes: Map<string, string>; archiveOf: Map<string, number>; archives: Map<number, string> }> {
    const batches: string[][] = [];
    let batch: string[] = [];
    let bytes = 0;
    let inodes = new Set<string>();
    for (const f of files) {
      const inode = f.liveKey?.slice(0, f.liveKey.indexOf(':'));
      // A second name of an inode is archived by tar as a hard link, without content, which a
      // restore could not read alone: it goes into the next archive.
      const full =
        batch.length >= ARCHIVE_FILES ||
        bytes + (f.size ?? 0) > ARCHIVE_BYTES ||
        (inode !== undefined && inodes.has(inode));
      if (batch.length > 0 && full) {
        batches.push(batch);
        batch = [];
        bytes = 0;
        inodes = new Set();
      }
      batch.push(f.path);
      bytes += f.size ?? 0;
      if (inode !== undefined) inodes.add(inode);
    }
    if (batch.length > 0) batches.push(batch);
    const r = await this.#exec(['sh', '-s'], {
      stdin: archiveStageScript(this.#dirs, stage, batches, n),
      signal,
    });
    const out = Buffer.from(r.stdout).toString('latin1');
    if (r.exitCode !== 0 || !out.endsWith(`D${n}\n`))
      throw this.#error(
        `copying changed files into the store failed (exit ${r.exitCode}): ${text(r.stderr)}`,
        'checkpoint',
      );
    const [listed = '', sums] = out.slice(0, -(n.length + 2)).split(`A${n}\n`);
    const sections = listed.split(`B${n}\n`).slice(1);
    if (sections.length !== batches.length || sums === undefined)
      throw this.#error('unexpected output from the store script', 'checkpoint');
    const hashes = new Map<string, string>();
    const archiveOf = new Map<string, number>();
    const archives = new Map<number, string>();
    for (const line of sums.split('\n')) {
      const sum = /^(\d+) ([0-9a-f]{64})$/.exec(line);
      if (sum) archives.set(Number(sum[1]), sum[2]!);
      else if (line !== '') throw this.#error('unexpected output from the store script', 'checkpoint');
    }
    for (const [k, section] of sections.entries()) {
      if (!archives.has(k)) throw this.#error(`archive ${k} of the checkpoint was not hashed`, 'checkpoint');
      const paths = batches[k]!;
      parseSums(
        section,
        paths.map((p) => `./${p}`),
        hashes,
      );
      for (const p of paths) if (hashes.has(p)) archiveOf.set(p, k);
    }
    return { hashes, archiveOf, archives };
  }

  /** Drop duplicate copies, file the pack, write the sealed manifest and (last) the info file. */
  async #commit(
    manifest: ExecManifest,
    json: string,
    staged: { stage: string; pack: string; duplicates: string[]; kept: number } | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const id = manifest.info.id;
    const { stdin, lengths } = commitInput(
      this.#dirs,
      id,
      { manifest: sealJson(json, this.#key), info: seal(manifest.info, this.#key) },
      staged,
    );
    const r = await this.#exec(['sh', '-c', COMMIT_READER, 'sh', this.#store, id, ...lengths], {
      stdin,
      signal,
    });
    if (r.exitCode !== 0 || Buffer.from(r.stdout).toString('latin1') !== `committed ${id}\n`) {
      // Whatever this checkpoint added to the index may not have reached the store.
      for (const [hash, object] of this.#objects)
        if (object.pack === staged?.pack) this.#objects.delete(hash);
      throw this.#error(`writing checkpoint ${id} failed: ${text(r.stderr)}`, 'checkpoint');
    }
  }

  /** Remove object files no remaining checkpoint refers to, and staging left by a crash. */
  async #collectGarbage(): Promise<void> {
    const live = new Set<string>();
    const packsInUse = new Set<string>();
    for (const info of await this.#list(undefined)) {
      let manifest: ExecManifest;
      try {
        manifest = await this.#readManifest(info.id, 'deleteCheckpoint', undefined);
      } catch (error) {
        // A corrupt checkpoint keeps nothing alive.
        if (error instanceof CheckpointCorruptError) continue;
        throw error;
      }
      for (const e of manifest.entries) {
        if (!e.object) continue;
        live.add(storedFile(e.object, e.path));
        packsInUse.add(e.object.pack);
      }
    }
    const r = await this.#exec(
      [
        'sh',
        '-c',
        'mkdir -p -- "$1/packs" && cd -- "$1/packs" && find . -mindepth 1 -type f -print0',
        'sh',
        this.#store,
      ],
      {},
    );
    if (r.exitCode !== 0)
      throw this.#error(`reading the checkpoint store failed: ${text(r.stderr)}`, 'deleteCheckpoint');
    const whole = new Set<string>();
    const doomed: string[] = [];
    for (const name of Buffer.from(r.stdout).toString('latin1').split('\0')) {
      if (!name.startsWith('./')) continue;
      const file = name.slice(2);
      const pack = file.slice(0, file.indexOf('/'));
      if (!/^[0-9a-f]{16}$/.test(pack) || !isNormalPath(file)) continue; // not ours: left alone
      if (!packsInUse.has(pack)) whole.add(pack);
      else if (!live.has(file)) doomed.push(file);
    }
    const gc = await this.#exec(['sh', '-s'], { stdin: gcScript(this.#dirs, [...whole], doomed) });
    if (gc.exitCode !== 0)
      throw this.#error(`cleaning the checkpoint store failed: ${text(gc.stderr)}`, 'deleteCheckpoint');
    // Forget what went: the index and the change cache must only point at objects that exist.
    for (const [hash, object] of this.#objects) {
      if (!live.has(storedFile(object, object.path))) this.#objects.delete(hash);
    }
    for (const key of this.#tars.keys()) {
      const [pack, k] = key.split('/');
      if (!live.has(`${pack}/${k}.tar`)) this.#tars.delete(key);
    }
    if (this.#cache) {
      for (const [path, entry] of this.#cache) {
        if (!entry.object || !live.has(storedFile(entry.object, entry.path))) this.#cache.delete(path);
      }
    }
  }

  #error(message: string, operation: string): AgentboxError {
    return new AgentboxError(message, { ...this.#context, operation });
  }
}

/**
 * sha256sum output for `batch` (in order; files that vanished are missing): `HASH  NAME\n`, or
 * with GNU coreutils `\HASH  ESCAPED\n` for names holding a backslash or a newline.
 */
function parseSums(section: string, batch: readonly string[], into: Map<string, string>): void {
  let at = 0;
  for (const name of batch) {
    const plain = `  ${name}\n`;
    const escaped = `  ${name.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')}\n`;
    const hex = (from: number) => /^[0-9a-f]{64}$/.test(section.slice(from, from + 64));
    if (hex(at) && section.startsWith(plain, at + 64)) {
      into.set(name.slice(2), section.slice(at, at + 64));
      at += 64 + plain.length;
    } else if (section[at] === '\\' && hex(at + 1) && section.startsWith(escaped, at + 65)) {
      into.set(name.slice(2), section.slice(at + 1, at + 65));
      at += 65 + escaped.length;
    }
    // Otherwise the file vanished before it was copied: no line for it.
  }
  if (at !== section.length) throw new AgentboxError('unexpected sha256sum output from the store script');
}

function metaOf(e: ExecManifestEntry): string {
  return `${e.mode}:${e.uid}:${e.gid}:${e.mtimeSec ?? 0}`;
}

/** `./a/b` from find → `a/b`; anything else (`..`, empty components) is refused. */
function relative(name: string, context: ErrorContext): string {
  const path = name.startsWith('./') ? name.slice(2) : '';
  if (!path || path.split('/').some((part) => part === '' || part === '.' || part === '..'))
    throw new AgentboxError(`unexpected path in the tree listing: ${JSON.stringify(name)}`, context);
  return path;
}

/** Nanoseconds from stat's `%z` time word, e.g. `18:40:28.580018653`. */
function nanos(time: string): string {
  const dot = time.indexOf('.');
  return dot < 0
    ? '000000000'
    : time
        .slice(dot + 1)
        .padEnd(9, '0')
        .slice(0, 9);
}

/**
 * The manifest's copy of a scanned entry, without its live stat key: every field in one order,
 * so that all entries share one object shape (100,000 of them are diffed, sealed and kept).
 */
function manifestEntry(e: Scanned): ExecManifestEntry {
  const out: ExecManifestEntry = { path: e.path, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid };
  if (e.size !== undefined) out.size = e.size;
  if (e.hash !== undefined) out.hash = e.hash;
  if (e.mtimeSec !== undefined) out.mtimeSec = e.mtimeSec;
  if (e.object !== undefined) out.object = e.object;
  if (e.exact) out.exact = true;
  const key =
    e.type === 'file' && e.liveKey
      ? keyToRecord({ path: e.path, liveKey: e.liveKey, racy: !!e.racy })
      : undefined;
  if (key !== undefined) out.key = key;
  if (e.target !== undefined) out.target = e.target;
  return out;
}

/**
 * The next capture: the entries `carried` from `last` (in its order, which is the manifest's)
 * merged with the `fresh` ones (sorted the same way), each with its JSON.
 */
function mergeCapture(
  last: LastCapture | undefined,
  carried: Uint8Array | undefined,
  fresh: readonly Scanned[],
): LastCapture {
  const next: LastCapture = { entries: [], json: [], records: [], byRecord: new Map() };
  const add = (entry: ExecManifestEntry, json: string, record: string | undefined) => {
    if (record !== undefined) next.byRecord.set(record, next.entries.length);
    next.entries.push(entry);
    next.json.push(json);
    next.records.push(record);
  };
  const addFresh = (e: Scanned) => {
    const entry = manifestEntry(e);
    // Carried next time only with a key (not too recent to trust) and content in the store.
    const carry = entry.key !== undefined && entry.hash !== undefined && entry.object !== undefined;
    add(entry, asciiJson(entry), carry ? e.record : undefined);
  };
  let j = 0;
  if (last && carried)
    for (let i = 0; i < carried.length; i++) {
      if (!carried[i]) continue;
      const entry = last.entries[i]!;
      while (j < fresh.length && compareBytes(fresh[j]!.path, entry.path) < 0) addFresh(fresh[j++]!);
      add(entry, last.json[i]!, last.records[i]);
    }
  while (j < fresh.length) addFresh(fresh[j++]!);
  return next;
}

function text(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('utf8').trim().slice(0, 2_000);
}

/** The sums of `objects` from a hashing script's output: a `B<n>` line before each batch of BATCH, `D<n>` at the end. */
function batchedSums(out: string, n: string, objects: readonly string[]): Map<string, string> {
  const sections = out
    .slice(0, -(n.length + 2))
    .split(`B${n}\n`)
    .slice(1);
  const got = new Map<string, string>();
  for (let i = 0; i * BATCH < objects.length; i++)
    parseSums(
      sections[i] ?? '',
      objects.slice(i * BATCH, (i + 1) * BATCH).map((o) => `./${o}`),
      got,
    );
  return got;
}

/**
 * The files of the store (`pack/path`, `pack/k.tar`) `entries` of `manifest` are restored from,
 * each with the hash it must have: an object's own, or its archive's as the manifest records it.
 */
function objectHashes(manifest: ExecManifest, entries: readonly ExecManifestEntry[]): Map<string, string> {
  const want = new Map<string, string>();
  for (const e of entries) {
    const object = e.object!;
    if (object.tar === undefined) want.set(storedFile(object, e.path), e.hash!);
    // The schema makes sure the manifest has the archive's hash.
    else want.set(storedFile(object, e.path), manifest.tars![`${object.pack}/${object.tar}`]!);
  }
  return want;
}

function corruptCheckpoint(id: string, why: string, context: ErrorContext): CheckpointCorruptError {
  return new CheckpointCorruptError(`checkpoint ${id} is corrupt: ${why}`, {
    ...context,
    operation: 'rollback',
    subject: id,
  });
}
