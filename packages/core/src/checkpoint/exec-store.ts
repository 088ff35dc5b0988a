/**
 * An incremental checkpoint store kept *inside* the sandbox (or on the remote host) and driven
 * only through an `exec` that runs argv there: a POSIX shell and busybox-level tools (find,
 * stat, tar, sha256sum, cp, mv, chmod, chown, touch, readlink) are all it needs.
 *
 * create: one exec lists the tree with its metadata (type, mode, owner, size, inode, mtime,
 * ctime, symlink targets); the diff against the last known state is made here; a second exec
 * copies only the changed files into a staging directory of the store (tar, in batches) and
 * hashes the copies (sha256sum, in batches); a third drops copies whose content the store
 * already has, files the rest as this checkpoint's pack directory and writes the manifest.
 * Objects are deduplicated by SHA-256 and never shared with the live tree (they are copies,
 * not links). Restore lists the live tree again, diffs it with the manifest and sends one
 * script that removes what is extra, recreates directories and symlinks, copies changed files
 * back (batched tar from the packs; a per-file copy where an object came from another path)
 * and puts back modes, owners and mtimes. So the cost follows the change, not the tree, and
 * the number of processes per checkpoint does not grow with the number of files.
 *
 * Change detection uses inode, size, mtime and ctime (ns): `touch -d` can set mtime back, not
 * ctime. A file whose ctime is not older than the listing itself (read from a file the
 * listing touches in the store) is not trusted later, since a write in the same clock tick
 * would not show: it is copied again next time.
 *
 * Crash safety: copies are staged under `tmp/`, a pack is renamed into `packs/` before its
 * manifest is written, and a checkpoint exists once its `.info` file does (renamed last). A
 * later checkpoint never touches an earlier one's files; a crash leaves only unreferenced
 * files, removed by the next delete.
 *
 * Names are handled as bytes: paths read from the sandbox are kept as latin1 "binary strings"
 * (one char per byte) and written back the same way, so any file name round-trips exactly.
 */
import { randomBytes } from 'node:crypto';
import {
  AgentboxError,
  CheckpointNotFoundError,
  type ErrorContext,
  InvalidArgumentError,
} from '../errors.js';
import type { CheckpointStore } from '../sandbox.js';
import type { CheckpointInfo } from '../types.js';

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
  /** Backend and sandbox named in errors. */
  context?: ErrorContext;
}

type EntryType = 'file' | 'dir' | 'symlink';

/** Where a file's content is kept: `packs/<pack>/<path>` in the store (path defaults to the entry's). */
export interface ExecObjectRef {
  pack: string;
  path?: string;
}

/** One entry of an exec-store manifest. Strings are binary (latin1) strings of the raw bytes. */
export interface ExecManifestEntry {
  /** Relative to the root, `/`-separated. */
  path: string;
  type: EntryType;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Files: size, SHA-256 of the content, mtime (whole seconds), where the content is kept. */
  size?: number;
  hash?: string;
  mtimeSec?: number;
  object?: ExecObjectRef;
  /** Files: the object already carries this entry's path, mode, owner and mtime (restorable by tar). */
  exact?: boolean;
  /** Files: the stat key seen when captured (inode:size:mtime:ctime), absent when it was too recent to trust. */
  key?: string;
  /** Symlinks: the target. */
  target?: string;
}

export interface ExecManifest {
  version: 2;
  info: CheckpointInfo;
  entries: ExecManifestEntry[];
}

interface Scanned extends ExecManifestEntry {
  /** Stat key now (files), and whether it is too recent to be trusted later. */
  liveKey?: string;
  racy?: boolean;
}

interface StoredObject {
  pack: string;
  path: string;
  /** mode:uid:gid:mtime the copy was made with. */
  meta: string;
}

/** Paths per generated command line (tar, sha256sum, rm, chmod): keeps each well under argv limits. */
const BATCH = 400;

const ID = /^ckpt-[a-z0-9]+-[0-9a-f]{8}$/;

const SCAN = `n=$1 f=$3 s=$4
mkdir -p -- "$s/tmp" && : > "$s/tmp/clock-$n" || { printf 'X%s store\\n' "$n"; exit 0; }
printf 'N%s %s\\n' "$n" "$(stat -c '%Z %z' -- "$s/tmp/clock-$n")"
rm -f -- "$s/tmp/clock-$n"
cd -- "$2" || { printf 'X%s root\\n' "$n"; exit 0; }
find . -mindepth 1 \\( -type f -o -type d -o -type l \\) -exec stat -c "$f" -- {} +
e=$?
printf 'S%s\\n' "$n"
find . -mindepth 1 -type l -exec sh -c 'n=$1; shift; for l; do printf "\\nL%s %s\\037" "$n" "$l"; readlink -- "$l"; done' sh "$n" {} +
printf '\\nE%s %s %s\\n' "$n" "$e" "$?"`;

export class ExecCheckpointStore implements CheckpointStore {
  readonly #exec: StoreExec;
  readonly #root: string;
  readonly #store: string;
  readonly #owners: boolean;
  readonly #context: ErrorContext;
  /** path → its entry at the last capture (or carried through a restore), for change detection. */
  #cache: Map<string, ExecManifestEntry> | undefined;
  /** Content the store has: hash → where, and with which metadata the copy was made. */
  #objects = new Map<string, StoredObject>();
  readonly #manifests = new Map<string, ExecManifest>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ExecCheckpointStoreOptions) {
    for (const [name, value] of [
      ['root', options.root],
      ['storeDir', options.storeDir],
    ] as const) {
      if (!value.startsWith('/') || value.includes('\0'))
        throw new InvalidArgumentError(`${name} must be an absolute path`, options.context ?? {});
    }
    const root = options.root.replace(/\/+$/, '') || '/';
    const store = options.storeDir.replace(/\/+$/, '') || '/';
    if (store === root || store.startsWith(`${root}/`) || root === '/')
      throw new InvalidArgumentError(
        'the checkpoint store must be outside the tree it saves',
        options.context ?? {},
      );
    this.#exec = options.exec;
    this.#root = root;
    this.#store = store;
    this.#owners = options.preserveOwnership ?? true;
    this.#context = options.context ?? {};
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  create(opts: { label: string | undefined; signal: AbortSignal | undefined }): Promise<CheckpointInfo> {
    return this.#serial(async () => {
      const { signal } = opts;
      const cache = await this.#loadState(signal);
      const scanned = await this.#scan(signal);
      const toCopy: Scanned[] = [];
      for (const entry of scanned) {
        if (entry.type !== 'file') continue;
        const known = cache.get(entry.path);
        if (known?.hash && known.object && !entry.racy && known.key === entry.liveKey) {
          entry.hash = known.hash;
          entry.object = known.object;
          if (known.exact) entry.exact = true;
        } else toCopy.push(entry);
      }

      const n = randomBytes(8).toString('hex');
      const stage = `tmp/stage-${n}`;
      let bytesStored = 0;
      const duplicates: string[] = [];
      const vanished = new Set<string>();
      if (toCopy.length > 0) {
        const copied = await this.#stage(toCopy, stage, n, signal);
        for (const entry of toCopy) {
          const got = copied.get(entry.path);
          if (!got) {
            vanished.add(entry.path);
            continue;
          }
          entry.hash = got;
          const meta = metaOf(entry);
          const have = this.#objects.get(got);
          if (have) {
            // The store has this content already: keep the older copy, drop the new one.
            duplicates.push(entry.path);
            entry.object =
              have.path === entry.path ? { pack: have.pack } : { pack: have.pack, path: have.path };
            if (have.path === entry.path && have.meta === meta) entry.exact = true;
          } else {
            this.#objects.set(got, { pack: n, path: entry.path, meta });
            entry.object = { pack: n };
            entry.exact = true;
            bytesStored += entry.size ?? 0;
          }
        }
      }

      const entries: ExecManifestEntry[] = scanned
        .filter((e) => !vanished.has(e.path))
        .map(({ liveKey, racy, ...entry }) =>
          entry.type === 'file' && liveKey && !racy ? { ...entry, key: liveKey } : entry,
        );
      const info: CheckpointInfo = {
        id: `ckpt-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`,
        label: opts.label,
        createdAt: new Date().toISOString(),
        entries: entries.length,
        bytesStored,
      };
      const manifest: ExecManifest = { version: 2, info, entries };
      const kept = toCopy.length - vanished.size - duplicates.length;
      await this.#commit(
        manifest,
        toCopy.length > 0 ? { stage, pack: n, duplicates, kept } : undefined,
        signal,
      );
      this.#manifests.set(info.id, manifest);
      this.#cache = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.path, e]));
      return info;
    });
  }

  restore(id: string, signal: AbortSignal | undefined): Promise<void> {
    return this.#serial(async () => {
      const manifest = await this.#readManifest(id, 'rollback', signal);
      const cache = await this.#loadState(signal);
      const live = new Map((await this.#scan(signal)).map((e) => [e.path, e]));
      const plan = planRestore(manifest.entries, live, cache, this.#owners);
      if (plan.lines.length > 0) {
        const nonce = randomBytes(8).toString('hex');
        const script = [
          'set -e',
          `R=${quote(bin(this.#root))} S=${quote(bin(this.#store))} T=${quote(`.agentbox-restore-${nonce}`)}`,
          // f OBJECT PATH MODE OWNER MTIME: a fresh copy of the object, put in place by rename.
          'f() {',
          '  d=${2%/*}; [ "$d" != "$2" ] || d=.',
          '  t="$R/$d/$T"',
          '  cp -- "$S/packs/$1" "$t"',
          '  [ "$4" = - ] || chown "$4" "$t"',
          '  chmod "$3" "$t"',
          '  touch -d "@$5" "$t"',
          '  mv -f -- "$t" "$R/$2"',
          '}',
          // x PACK PATHS...: objects that already carry their path, mode, owner and mtime, in one tar.
          'x() { p=$1; shift; (cd -- "$S/packs/$p" && tar -cf - "$@") | (cd -- "$R" && tar -xf - --numeric-owner); }',
          ...plan.lines,
        ].join('\n');
        const r = await this.#exec(['sh', '-s'], { stdin: Buffer.from(`${script}\n`, 'latin1'), signal });
        if (r.exitCode !== 0)
          throw this.#error(`rollback to ${id} failed (exit ${r.exitCode}): ${text(r.stderr)}`, 'rollback');
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

  delete(id: string): Promise<void> {
    return this.#serial(async () => {
      await this.#readManifest(id, 'deleteCheckpoint', undefined);
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

  async #list(signal: AbortSignal | undefined): Promise<CheckpointInfo[]> {
    const r = await this.#exec(
      [
        'sh',
        '-c',
        'for f in "$1"/checkpoints/*.info; do [ -f "$f" ] || continue; cat -- "$f"; printf "\\n"; done',
        'sh',
        this.#store,
      ],
      { signal },
    );
    if (r.exitCode !== 0)
      throw this.#error(`listing checkpoints failed: ${text(r.stderr)}`, 'listCheckpoints');
    return Buffer.from(r.stdout)
      .toString('latin1')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as CheckpointInfo)
      .map((info) => ({ ...info, label: info.label ?? undefined }))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async #readManifest(id: string, operation: string, signal: AbortSignal | undefined): Promise<ExecManifest> {
    if (typeof id !== 'string' || !ID.test(id))
      throw new CheckpointNotFoundError(`no checkpoint ${JSON.stringify(id)}`, {
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
      throw new CheckpointNotFoundError(`no checkpoint ${JSON.stringify(id)}`, {
        ...this.#context,
        operation,
        subject: id,
      });
    if (r.exitCode !== 0) throw this.#error(`reading checkpoint ${id} failed: ${text(r.stderr)}`, operation);
    const manifest = JSON.parse(Buffer.from(r.stdout).toString('latin1')) as ExecManifest;
    if (manifest.version !== 2) throw this.#error(`checkpoint ${id} has an unknown format`, operation);
    this.#manifests.set(id, manifest);
    this.#learn(manifest);
    return manifest;
  }

  /** Remember the objects a manifest refers to, for deduplication. */
  #learn(manifest: ExecManifest): void {
    for (const e of manifest.entries) {
      if (!e.hash || !e.object || this.#objects.has(e.hash)) continue;
      const path = e.object.path ?? e.path;
      this.#objects.set(e.hash, { pack: e.object.pack, path, meta: e.exact ? metaOf(e) : '' });
    }
  }

  /** The last capture's entries, so that a process that re-attaches does not copy everything again. */
  async #loadState(signal: AbortSignal | undefined): Promise<Map<string, ExecManifestEntry>> {
    if (this.#cache) return this.#cache;
    const latest = (await this.#list(signal)).at(-1);
    const entries = latest ? (await this.#readManifest(latest.id, 'checkpoint', signal)).entries : [];
    this.#cache = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.path, e]));
    return this.#cache;
  }

  /** List the live tree: every file, directory and symlink below the root, parents first. */
  async #scan(signal: AbortSignal | undefined, attempt = 1): Promise<Scanned[]> {
    const n = randomBytes(8).toString('hex');
    const format = `\nR${n} %f %s %i %u %g %Y %y %Z %z\x1f%n`;
    const r = await this.#exec(['sh', '-c', SCAN, 'sh', n, this.#root, format, this.#store], { signal });
    const out = Buffer.from(r.stdout).toString('latin1');
    if (out.startsWith(`X${n} root`))
      throw this.#error(`the tree to checkpoint (${this.#root}) does not exist`, 'checkpoint');
    if (out.startsWith(`X${n} store`))
      throw this.#error(
        `the checkpoint store ${this.#store} is not writable: ${text(r.stderr)}`,
        'checkpoint',
      );
    const header = new RegExp(`^N${n} (\\d+) \\S+ (\\S+) \\S+\\n`).exec(out);
    const split = out.indexOf(`S${n}\n`);
    const end = new RegExp(`\\nE${n} (\\d+) (\\d+)\\n$`).exec(out);
    if (r.exitCode !== 0 || !header || split < 0 || !end)
      throw this.#error(`listing ${this.#root} failed (exit ${r.exitCode}): ${text(r.stderr)}`, 'checkpoint');
    if (end[1] !== '0' || end[2] !== '0') {
      // A file removed while it was listed makes stat fail; list again before giving up.
      if (attempt < 3) return this.#scan(signal, attempt + 1);
      throw this.#error(`listing ${this.#root} failed: ${text(r.stderr)}`, 'checkpoint');
    }
    // The store's clock at the start of the listing: a file changed in that tick or later is not trusted.
    const clock = `${header[1]!.padStart(12, '0')}.${nanos(header[2]!)}`;
    const targets = new Map<string, string>();
    for (const record of out
      .slice(split + n.length + 2, end.index)
      .split(`\nL${n} `)
      .slice(1)) {
      const sep = record.indexOf('\x1f');
      let target = record.slice(sep + 1);
      if (target.endsWith('\n')) target = target.slice(0, -1);
      targets.set(relative(record.slice(0, sep), this.#context), target);
    }
    const entries: Scanned[] = [];
    for (const record of out.slice(header[0].length, split).split(`\nR${n} `).slice(1)) {
      const sep = record.indexOf('\x1f');
      let name = record.slice(sep + 1);
      if (name.endsWith('\n')) name = name.slice(0, -1);
      const f = record.slice(0, sep).split(' ');
      // %f %s %i %u %g %Y %y(3 words) %Z %z(3 words)
      if (f.length !== 13)
        throw this.#error(`unexpected stat output for ${JSON.stringify(name)}`, 'checkpoint');
      const raw = Number.parseInt(f[0]!, 16);
      const fmt = raw & 0o170000;
      const type: EntryType | undefined =
        fmt === 0o100000 ? 'file' : fmt === 0o040000 ? 'dir' : fmt === 0o120000 ? 'symlink' : undefined;
      if (!type) continue; // sockets, FIFOs and devices are not captured
      const path = relative(name, this.#context);
      const entry: Scanned = { path, type, mode: raw & 0o7777, uid: Number(f[3]), gid: Number(f[4]) };
      if (type === 'file') {
        entry.size = Number(f[1]);
        entry.mtimeSec = Number(f[5]);
        entry.liveKey = `${f[2]}:${f[1]}:${f[5]}.${nanos(f[7]!)}:${f[9]}.${nanos(f[11]!)}`;
        entry.racy = `${f[9]!.padStart(12, '0')}.${nanos(f[11]!)}` >= clock;
      } else if (type === 'symlink') {
        const target = targets.get(path);
        if (target === undefined) continue; // removed between the two listings
        entry.target = target;
      }
      entries.push(entry);
    }
    entries.sort((a, b) => compareBytes(a.path, b.path));
    return entries;
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
    const batches: string[][] = [];
    for (let i = 0; i < files.length; i += BATCH)
      batches.push(files.slice(i, i + BATCH).map((f) => `./${f.path}`));
    const lines = [
      `R=${quote(bin(this.#root))} S=${quote(bin(this.#store))} T=${quote(stage)} n=${n}`,
      'cd -- "$S" || exit 3',
      // Staging left by a crash long ago.
      'find tmp -mindepth 1 -maxdepth 1 -mmin +60 -exec rm -rf -- {} + 2>/dev/null',
      'mkdir -p -- "$T" || exit 3',
      'b() {',
      `  printf 'B%s\\n' "$n"`,
      '  (cd -- "$R" && tar -cf - "$@" 2>/dev/null) | (cd -- "$S/$T" && tar -xf - --numeric-owner 2>/dev/null)',
      // A file still there but not copied could not be read: refuse rather than lose it on rollback.
      '  for p; do if [ ! -f "$S/$T/$p" ] && [ -f "$R/$p" ] && [ ! -L "$R/$p" ]; then echo "cannot read $p" >&2; exit 5; fi; done',
      '  (cd -- "$S/$T" && sha256sum "$@" 2>/dev/null)',
      '  return 0',
      '}',
      ...batches.map((batch) => `b ${batch.map(quote).join(' ')}`),
      `printf 'D%s\\n' "$n"`,
    ];
    const r = await this.#exec(['sh', '-s'], {
      stdin: Buffer.from(`${lines.join('\n')}\n`, 'latin1'),
      signal,
    });
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
    if (sections.length !== batches.length)
      throw this.#error('unexpected output from the store script', 'checkpoint');
    const hashes = new Map<string, string>();
    for (const [i, batch] of batches.entries()) parseSums(sections[i]!, batch, hashes);
    return hashes;
  }

  /** Drop duplicate copies, file the pack, write the manifest and (last) the info file. */
  async #commit(
    manifest: ExecManifest,
    staged: { stage: string; pack: string; duplicates: string[]; kept: number } | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const id = manifest.info.id;
    const eof = `AGENTBOX_EOF_${randomBytes(8).toString('hex')}`;
    const lines = [
      'set -e',
      `S=${quote(bin(this.#store))}`,
      'mkdir -p -- "$S/checkpoints" "$S/tmp" "$S/packs"',
    ];
    if (staged) {
      const stage = `"$S/"${quote(staged.stage)}`;
      if (staged.kept === 0) lines.push(`rm -rf -- ${stage}`);
      else {
        for (let i = 0; i < staged.duplicates.length; i += BATCH)
          lines.push(
            `(cd -- ${stage} && rm -f -- ${staged.duplicates
              .slice(i, i + BATCH)
              .map((p) => quote(`./${p}`))
              .join(' ')})`,
          );
        lines.push(`mv -- ${stage} "$S/packs/"${quote(staged.pack)}`);
      }
    }
    lines.push(
      `cat > "$S/tmp/${id}.manifest" <<'${eof}'`,
      asciiJson(manifest),
      eof,
      `cat > "$S/tmp/${id}.info" <<'${eof}'`,
      asciiJson(manifest.info),
      eof,
      `mv -f -- "$S/tmp/${id}.manifest" "$S/checkpoints/${id}.manifest"`,
      // The info file makes the checkpoint exist: written last.
      `mv -f -- "$S/tmp/${id}.info" "$S/checkpoints/${id}.info"`,
    );
    const r = await this.#exec(['sh', '-s'], {
      stdin: Buffer.from(`${lines.join('\n')}\n`, 'latin1'),
      signal,
    });
    if (r.exitCode !== 0) {
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
      for (const e of (await this.#readManifest(info.id, 'deleteCheckpoint', undefined)).entries) {
        if (!e.object) continue;
        live.add(`${e.object.pack}/${e.object.path ?? e.path}`);
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
      if (!packsInUse.has(pack)) whole.add(pack);
      else if (!live.has(file)) doomed.push(file);
    }
    const lines = ['S=$1', 'cd -- "$S/packs" || exit 3'];
    for (const pack of whole) lines.push(`rm -rf -- ${quote(pack)}`);
    for (let i = 0; i < doomed.length; i += BATCH)
      lines.push(
        `rm -f -- ${doomed
          .slice(i, i + BATCH)
          .map((p) => quote(`./${p}`))
          .join(' ')}`,
      );
    lines.push('find "$S/tmp" -mindepth 1 -maxdepth 1 -mmin +60 -exec rm -rf -- {} + 2>/dev/null', 'exit 0');
    const gc = await this.#exec(['sh', '-s', '--', this.#store], {
      stdin: Buffer.from(`${lines.join('\n')}\n`, 'latin1'),
    });
    if (gc.exitCode !== 0)
      throw this.#error(`cleaning the checkpoint store failed: ${text(gc.stderr)}`, 'deleteCheckpoint');
    // Forget what went: the index and the change cache must only point at objects that exist.
    for (const [hash, object] of this.#objects) {
      if (!live.has(`${object.pack}/${object.path}`)) this.#objects.delete(hash);
    }
    if (this.#cache) {
      for (const [path, entry] of this.#cache) {
        if (!entry.object || !live.has(`${entry.object.pack}/${entry.object.path ?? entry.path}`))
          this.#cache.delete(path);
      }
    }
  }

  #error(message: string, operation: string): AgentboxError {
    return new AgentboxError(message, { ...this.#context, operation });
  }
}

/** The restore script's body, and the paths whose cached entry stays valid. */
function planRestore(
  wanted: readonly ExecManifestEntry[],
  live: Map<string, Scanned>,
  cache: Map<string, ExecManifestEntry>,
  owners: boolean,
): { lines: string[]; kept: Set<string> } {
  const want = new Map(wanted.map((e) => [e.path, e]));
  const lines: string[] = [];
  const kept = new Set<string>();
  const at = (path: string) => `"$R/"${quote(path)}`;
  const batched = (command: string, paths: string[]) => {
    for (let i = 0; i < paths.length; i += BATCH)
      lines.push(
        `${command} ${paths
          .slice(i, i + BATCH)
          .map(at)
          .join(' ')}`,
      );
  };

  // 1. Remove what the checkpoint does not have, or has as another type: topmost only, children go with it.
  const removed = new Set<string>();
  const rm: string[] = [];
  for (const path of [...live.values()]
    .filter((e) => want.get(e.path)?.type !== e.type)
    .map((e) => e.path)
    .sort(compareBytes)) {
    if (!hasAncestorIn(path, removed)) rm.push(path);
    removed.add(path);
  }
  batched('rm -rf --', rm);
  const present = (path: string) => live.has(path) && !removed.has(path);

  // 2. Directories the restorer could not write into are opened first (their mode is put back in step 4).
  const dirModes: ExecManifestEntry[] = [];
  const opened = new Set<string>();
  const open: string[] = [];
  for (const entry of live.values()) {
    if (entry.type !== 'dir' || !present(entry.path) || (entry.mode & 0o700) === 0o700) continue;
    open.push(entry.path);
    opened.add(entry.path);
  }
  batched('chmod u+rwx', open);

  // 3. Directories (parents first), symlinks, files.
  const byTar = new Map<string, string[]>();
  const chmods = new Map<string, string[]>();
  const chowns = new Map<string, string[]>();
  const add = (map: Map<string, string[]>, key: string, path: string) => {
    const list = map.get(key) ?? [];
    list.push(path);
    map.set(key, list);
  };
  for (const entry of [...wanted].sort((a, b) => compareBytes(a.path, b.path))) {
    const have = present(entry.path) ? live.get(entry.path) : undefined;
    const owner = `${entry.uid}:${entry.gid}`;
    const ownerDiffers = owners && (!have || have.uid !== entry.uid || have.gid !== entry.gid);
    if (entry.type === 'dir') {
      if (!have) lines.push(`mkdir -m 700 -- ${at(entry.path)}`);
      if (ownerDiffers) add(chowns, owner, entry.path);
      if (!have || have.mode !== entry.mode || opened.has(entry.path)) dirModes.push(entry);
    } else if (entry.type === 'symlink') {
      if (!have || have.target !== entry.target) {
        if (have) lines.push(`rm -f -- ${at(entry.path)}`);
        lines.push(`ln -s -- ${quote(entry.target!)} ${at(entry.path)}`);
        if (owners) lines.push(`chown -h ${owner} ${at(entry.path)}`);
      } else if (ownerDiffers) lines.push(`chown -h ${owner} ${at(entry.path)}`);
    } else {
      const cached = cache.get(entry.path);
      const unchanged =
        have &&
        !have.racy &&
        ((cached?.key !== undefined && cached.key === have.liveKey && cached.hash === entry.hash) ||
          (entry.key !== undefined && entry.key === have.liveKey));
      if (unchanged) {
        kept.add(entry.path);
        if (ownerDiffers) add(chowns, owner, entry.path);
        if (have.mode !== entry.mode) add(chmods, octal(entry.mode), entry.path);
        continue;
      }
      const object = entry.object!;
      if (entry.exact && object.path === undefined) {
        add(byTar, object.pack, entry.path);
        // tar restores them; as a user without privileges it may not, so say it again (few commands).
        if (owners) add(chowns, owner, entry.path);
        add(chmods, octal(entry.mode), entry.path);
      } else {
        const source = `${object.pack}/${object.path ?? entry.path}`;
        lines.push(
          `f ${quote(source)} ${quote(entry.path)} ${octal(entry.mode)} ${owners ? owner : '-'} ${entry.mtimeSec ?? 0}`,
        );
      }
    }
  }
  for (const [pack, paths] of byTar) {
    for (let i = 0; i < paths.length; i += BATCH)
      lines.push(
        `x ${quote(pack)} ${paths
          .slice(i, i + BATCH)
          .map((p) => quote(`./${p}`))
          .join(' ')}`,
      );
  }
  for (const [owner, paths] of chowns) batched(`chown ${owner}`, paths);
  for (const [mode, paths] of chmods) batched(`chmod ${mode}`, paths);
  // 4. Directory modes last, deepest first, so a read-only directory does not block its own restore.
  const dirsByMode = new Map<string, string[]>();
  for (const entry of dirModes.reverse()) add(dirsByMode, octal(entry.mode), entry.path);
  for (const [mode, paths] of dirsByMode) batched(`chmod ${mode}`, paths);
  return { lines, kept };
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

function hasAncestorIn(path: string, set: Set<string>): boolean {
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1))
    if (set.has(path.slice(0, i))) return true;
  return false;
}

/** `./a/b` from find → `a/b`; anything else (`..`, empty components) is refused. */
function relative(name: string, context: ErrorContext): string {
  const path = name.startsWith('./') ? name.slice(2) : '';
  if (!path || path.split('/').some((part) => part === '' || part === '.' || part === '..'))
    throw new AgentboxError(`unexpected path in the tree listing: ${JSON.stringify(name)}`, context);
  return path;
}

/** Nanoseconds from stat's `%y`/`%z` time word, e.g. `18:40:28.580018653`. */
function nanos(time: string): string {
  const dot = time.indexOf('.');
  return dot < 0
    ? '000000000'
    : time
        .slice(dot + 1)
        .padEnd(9, '0')
        .slice(0, 9);
}

/** Byte order of binary strings, with `/` sorting first so that a directory precedes its contents. */
function compareBytes(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i) === 0x2f ? -1 : a.charCodeAt(i);
    const y = b.charCodeAt(i) === 0x2f ? -1 : b.charCodeAt(i);
    if (x !== y) return x - y;
  }
  return a.length - b.length;
}

function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/** A (UTF-8) string as the binary string of its bytes. */
function bin(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** JSON with every non-ASCII char escaped: the same text whatever the encoding it is read with. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function text(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('utf8').trim().slice(0, 2_000);
}
