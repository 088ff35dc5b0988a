/**
 * Every shell script the exec store sends, rendered in one place. Scripts are binary strings
 * (one char per byte, so names that are not UTF-8 survive) turned into bytes by
 * `binaryScript`, which refuses any char above 0xFF. Every value that reaches the text is
 * either a validated integer printed by {@link octal} / {@link decimal}, a fixed token, or a
 * word quoted by `shellQuoteBinary`.
 */
import { InvalidArgumentError } from '../../errors.js';
import { binaryScript, shellQuoteBinary as q } from '../../shell-quote.js';
import type { ExecManifestEntry } from './manifest.js';
import { CHECKPOINT_ID, PACK_ID } from './manifest.js';
import type { RestorePlan } from './plan.js';

/** Paths per generated command line (tar, sha256sum, rm, chmod): keeps each well under argv limits. */
export const BATCH = 400;

/** A permission mode as 4 octal digits; anything but an integer in 0..0o7777 is refused. */
export function octal(mode: number): string {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)
    throw new InvalidArgumentError(`not a file mode: ${String(mode)}`);
  return mode.toString(8).padStart(4, '0');
}

/** A safe integer in decimal (uid, gid, mtime); anything else is refused. */
export function decimal(n: number): string {
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`not an integer: ${String(n)}`);
  return String(n);
}

function pack(id: string): string {
  if (!PACK_ID.test(id)) throw new InvalidArgumentError(`not a pack id: ${JSON.stringify(id)}`);
  return id;
}

function batches<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(items.slice(i, i + BATCH));
  return out;
}

export interface Dirs {
  /** The tree's root and the store, as binary strings. */
  root: string;
  store: string;
}

/**
 * Hash objects of the store (paths below `packs/`, e.g. `<pack>/<path>`), batched: prints
 * `B<n>\n` before each batch's sha256sum output and `D<n>\n` at the end. With `tolerant`
 * (the scrub), a missing or unreadable object only has no line; otherwise it stops the script.
 */
export function verifyScript(dirs: Dirs, objects: readonly string[], n: string, tolerant = false): Buffer {
  return binaryScript(
    [
      `cd -- ${q(dirs.store)}/packs || exit 3`,
      ...batches(objects).map(
        (b) =>
          `printf 'B%s\\n' ${n}; sha256sum -- ${b.map((o) => q(`./${o}`)).join(' ')}${tolerant ? ' 2>/dev/null; :' : ' || exit 4'}`,
      ),
      `printf 'D%s\\n' ${n}`,
      '',
    ].join('\n'),
  );
}

/** The top of a staging script: names, the store as cwd, the staging dir made (and old ones gone). */
function stageStart(dirs: Dirs, stage: string, n: string): string[] {
  return [
    `R=${q(dirs.root)} S=${q(dirs.store)} T=${q(stage)} n=${n}`,
    'cd -- "$S" || exit 3',
    // Staging left by a crash long ago.
    'find tmp -mindepth 1 -maxdepth 1 -mmin +60 -exec rm -rf -- {} + 2>/dev/null',
    'mkdir -p -- "$T" || exit 3',
  ];
}

/**
 * Copy `files` into the store's staging dir (tar, batched) and hash the copies. Each batch is
 * hashed in the background while the next one is copied (the copy waits on the disk, the hash
 * on a core). One hash runs at a time and only hashes write to stdout, so the batches' sums
 * come out in order.
 */
export function stageScript(dirs: Dirs, stage: string, files: readonly string[], n: string): Buffer {
  return binaryScript(
    [
      ...stageStart(dirs, stage, n),
      'h=',
      'b() {',
      '  (cd -- "$R" && tar -cf - "$@" 2>/dev/null) | (cd -- "$S/$T" && tar -xf - --numeric-owner 2>/dev/null)',
      // A file still there but not copied could not be read: refuse rather than lose it on rollback.
      '  for p; do if [ ! -f "$S/$T/$p" ] && [ -f "$R/$p" ] && [ ! -L "$R/$p" ]; then echo "cannot read $p" >&2; exit 5; fi; done',
      '  [ -z "$h" ] || wait "$h"',
      `  { printf 'B%s\\n' "$n"; cd -- "$S/$T" && sha256sum "$@" 2>/dev/null; } &`,
      '  h=$!',
      '}',
      ...batches(files).map((b) => `b ${b.map((f) => q(`./${f}`)).join(' ')}`),
      'wait',
      `printf 'D%s\\n' "$n"`,
      '',
    ].join('\n'),
  );
}

/**
 * Copy `batches` of files into archives of the store's staging dir, `<k>.tar` for batch k, for
 * a sandbox whose processes are all stopped meanwhile (its files cannot change under the copy):
 * each file is hashed in the tree and each archive as written, in the background while the next
 * batch is archived. Creating one file per batch instead of one per file is what makes a first
 * checkpoint of many small files cheap. Output: per batch `B<n>\n` and the files' sums; then
 * `A<n>\n` and a line `<k> <sum>` per archive (in any order); `D<n>\n` at the end.
 */
export function archiveStageScript(
  dirs: Dirs,
  stage: string,
  batches: readonly (readonly string[])[],
  n: string,
): Buffer {
  return binaryScript(
    [
      ...stageStart(dirs, stage, n),
      // Two chains of hashing jobs, the files' and the archives' (one job of each at a time), on
      // two cores while the next batch is archived.
      'hf= ha=',
      'b() {',
      '  k=$1; shift',
      // A file the store's user may not read is refused, not left out (a rollback would lose it).
      '  for p; do if [ -f "$R/$p" ] && [ ! -L "$R/$p" ] && [ ! -r "$R/$p" ]; then echo "cannot read $p" >&2; exit 5; fi; done',
      '  (cd -- "$R" && tar -cf "$S/$T/$k.tar" "$@") || { echo "archiving failed" >&2; exit 6; }',
      '  [ -z "$hf" ] || wait "$hf"',
      `  { printf 'B%s\\n' "$n"; cd -- "$R" && sha256sum "$@" 2>/dev/null; } &`,
      '  hf=$!',
      '  [ -z "$ha" ] || wait "$ha"',
      `  { t=$(sha256sum < "$S/$T/$k.tar") && printf '%s %s\\n' "$k" "\${t%% *}" >> "$S/$T.sums"; } &`,
      '  ha=$!',
      '}',
      ...batches.map((b, k) => `b ${k} ${b.map((f) => q(`./${f}`)).join(' ')}`),
      'wait',
      `printf 'A%s\\n' "$n"`,
      'cat -- "$T.sums" && rm -f -- "$T.sums"',
      `printf 'D%s\\n' "$n"`,
      '',
    ].join('\n'),
  );
}

/**
 * A name tar cannot select an archive member by: BusyBox matches member names as patterns (and
 * then reports an escaped one as not found), so such a member is had by unpacking its archive.
 */
export const GLOB_CHARS = /[*?[\\]/;

/** Up to this many new objects are flushed one by one; more, by one syncfs of the store's filesystem. */
export const FSYNC_EACH_UP_TO = 64;

/**
 * Reads a commit's input: the sealed manifest and info files, by their byte counts, into the
 * store's `tmp/`, then the commit script itself (`sh -s`). Arguments: store, checkpoint id,
 * manifest length, info length. `dd` with these flags (GNU and BusyBox) reads exactly its count
 * from the pipe; `head -c` may read ahead and eat the next part. A 30 MB manifest in a heredoc
 * costs the shell ten times as long.
 */
export const COMMIT_READER = [
  'set -e',
  'mkdir -p -- "$1/tmp"',
  'dd bs=1048576 count="$3" iflag=count_bytes,fullblock status=none > "$1/tmp/$2.manifest"',
  'dd bs=1048576 count="$4" iflag=count_bytes,fullblock status=none > "$1/tmp/$2.info"',
  'exec sh -s',
].join('\n');

/**
 * The stdin for {@link COMMIT_READER} and its two length arguments: the sealed files, then the
 * script that drops duplicate copies, files the pack and moves the manifest and (last) the
 * info file into place. The script prints `committed <id>` as its last act.
 */
export function commitInput(
  dirs: Dirs,
  id: string,
  files: { manifest: string; info: string },
  staged: { stage: string; pack: string; duplicates: readonly string[]; kept: number } | undefined,
): { stdin: Buffer; lengths: [string, string] } {
  if (!CHECKPOINT_ID.test(id)) throw new InvalidArgumentError(`not a checkpoint id: ${JSON.stringify(id)}`);
  // Sealed files are ASCII lines: their bytes are their chars.
  for (const text of [files.manifest, files.info])
    if (/[^\x20-\x7e\n]/.test(text)) throw new InvalidArgumentError('unexpected manifest text');
  const lines = ['set -e', `S=${q(dirs.store)}`, 'mkdir -p -- "$S/checkpoints" "$S/tmp" "$S/packs"'];
  if (staged) {
    const stage = `"$S/"${q(staged.stage)}`;
    if (staged.kept === 0) lines.push(`rm -rf -- ${stage}`);
    else {
      for (const b of batches(staged.duplicates))
        lines.push(`(cd -- ${stage} && rm -f -- ${b.map((p) => q(`./${p}`)).join(' ')})`);
      lines.push(
        `mv -- ${stage} "$S/packs/"${pack(staged.pack)}`,
        // Flushed before a manifest names them (best effort: a `sync` that takes no files syncs
        // everything). Many files: one syncfs (`sync -f`), where an fsync each costs more than the copy.
        `${staged.kept > FSYNC_EACH_UP_TO ? `sync -f -- "$S/packs/"${pack(staged.pack)} 2>/dev/null || ` : ''}find "$S/packs/"${pack(staged.pack)} -exec sync -- {} + 2>/dev/null || :`,
        'sync -- "$S/packs" 2>/dev/null || :',
      );
    }
  }
  const tmp = (ext: string) => `"$S/tmp/"${q(`${id}.${ext}`)}`;
  const final = (ext: string) => `"$S/checkpoints/"${q(`${id}.${ext}`)}`;
  lines.push(
    `sync -- ${tmp('manifest')} ${tmp('info')} 2>/dev/null || :`,
    `mv -f -- ${tmp('manifest')} ${final('manifest')}`,
    // The info file makes the checkpoint exist: written last.
    `mv -f -- ${tmp('info')} ${final('info')}`,
    'sync -- "$S/checkpoints" 2>/dev/null || :',
    // Read to its end: a cut-short input cannot look like a commit.
    `echo ${q(`committed ${id}`)}`,
    '',
  );
  const manifest = Buffer.from(files.manifest, 'latin1');
  const info = Buffer.from(files.info, 'latin1');
  return {
    stdin: Buffer.concat([manifest, info, binaryScript(lines.join('\n'))]),
    lengths: [String(manifest.length), String(info.length)],
  };
}

/** Remove whole packs and single object files no checkpoint refers to, and old staging. */
export function gcScript(dirs: Dirs, packs: readonly string[], files: readonly string[]): Buffer {
  const lines = [`S=${q(dirs.store)}`, 'cd -- "$S/packs" || exit 3'];
  for (const p of packs) lines.push(`rm -rf -- ${pack(p)}`);
  for (const b of batches(files)) lines.push(`rm -f -- ${b.map((p) => q(`./${p}`)).join(' ')}`);
  lines.push(
    'find "$S/tmp" -mindepth 1 -maxdepth 1 -mmin +60 -exec rm -rf -- {} + 2>/dev/null',
    'exit 0',
    '',
  );
  return binaryScript(lines.join('\n'));
}

/** Exit statuses of a restore script whose object check failed before any change. */
export const RESTORE_OBJECT_MISSING = 96;
export const RESTORE_OBJECT_MISMATCH = 97;
/** Up to this many objects are checked inside the restore script; more, by a hashing script first. */
export const VERIFY_INLINE_UP_TO = 64;

/** Where the exec store keeps the record of a rollback under way, relative to the store. */
export const ROLLBACK_RECORD = 'rollback-pending';

/**
 * Names the shell running a restore script (`PID STARTTIME`, from /proc), relative to the store.
 * A caller cut off from that shell (an SSH connection lost, its own process killed) leaves it
 * running; a later listing of the tree waits for it to end (see {@link WAIT_FOR_RESTORE}), so a
 * second rollback never plans from, or writes into, a tree the first one is still changing.
 */
export const RESTORE_OWNER = 'restore-owner';

/**
 * Shell text for the top of a script with `s` set to the store: wait while the shell named by
 * the owner file still runs (same pid, same start time, so a reused pid does not count), at
 * most about 120 s; then `busy` is 1 when it still does.
 */
export const WAIT_FOR_RESTORE = `busy=0 w=0
while { read -r op ot < "$s/${RESTORE_OWNER}"; } 2>/dev/null && [ -n "$ot" ] && [ "$(cut -d' ' -f22 "/proc/$op/stat" 2>/dev/null)" = "$ot" ]; do
  [ "$w" -lt 1200 ] || { busy=1; break; }
  if sleep 0.1 2>/dev/null; then w=$((w+1)); else sleep 1; w=$((w+10)); fi
done`;

/**
 * The restore script for a plan of validated exec-manifest entries. With `record` (the sealed
 * record text), the script puts it in place (flushed, by rename) before its first change and
 * removes it after its last, so a script cut short leaves it behind.
 */
export function restoreScript(
  dirs: Dirs,
  plan: RestorePlan<ExecManifestEntry>,
  options: {
    owners: boolean;
    nonce: string;
    record?: string;
    /**
     * Files of the store (`pack/path`, `pack/k.tar`) to hash before the first change, each
     * against its hash: a missing one exits {@link RESTORE_OBJECT_MISSING}, a different one
     * {@link RESTORE_OBJECT_MISMATCH}, and nothing is changed. For a few files (one `sha256sum`
     * each); many are hashed apart.
     */
    verify?: ReadonlyMap<string, string>;
  },
): Buffer | undefined {
  const lines: string[] = [];
  const at = (path: string) => `"$R/"${q(path)}`;
  if (!/^[0-9a-f]+$/.test(options.nonce)) throw new InvalidArgumentError('bad nonce');
  const unpacked = `unpack-${options.nonce}`;
  const batched = (command: string, paths: readonly string[]) => {
    for (const b of batches(paths)) lines.push(`${command} ${b.map(at).join(' ')}`);
  };
  const owner = (e: ExecManifestEntry) => `${decimal(e.uid)}:${decimal(e.gid)}`;
  const group = (entries: readonly ExecManifestEntry[], key: (e: ExecManifestEntry) => string) => {
    const map = new Map<string, string[]>();
    for (const e of entries) {
      const k = key(e);
      map.set(k, [...(map.get(k) ?? []), e.path]);
    }
    return map;
  };

  batched('chmod u+rwx', plan.open);
  batched('rm -rf --', plan.remove);
  const byTar = new Map<string, string[]>();
  const byArchive = new Map<string, string[]>();
  const unpack = new Set<string>();
  const chown = [...plan.chown];
  const chmod = [...plan.chmod];
  const copy = (command: string, source: string, entry: ExecManifestEntry) =>
    lines.push(
      `${command} ${q(source)} ${q(entry.path)} ${octal(entry.mode)} ${options.owners ? owner(entry) : '-'} ${decimal(entry.mtimeSec ?? 0)}`,
    );
  for (const { kind, entry } of plan.create) {
    if (kind === 'mkdir') lines.push(`mkdir -m 700 -- ${at(entry.path)}`);
    else if (kind === 'symlink') lines.push(`ln -s -- ${q(entry.target!)} ${at(entry.path)}`);
    else {
      const object = entry.object!;
      const member = object.path ?? entry.path;
      const inPlace = entry.exact && object.path === undefined;
      if (object.tar !== undefined) {
        const archive = `${pack(object.pack)}/${decimal(object.tar)}`;
        if (GLOB_CHARS.test(member)) {
          unpack.add(archive);
          copy('f', `tmp/${unpacked}/${archive.replace('/', '-')}/${member}`, entry);
        } else if (inPlace) {
          byArchive.set(archive, [...(byArchive.get(archive) ?? []), entry.path]);
          if (options.owners) chown.push(entry);
          chmod.push(entry);
        } else copy('g', `${archive}.tar:${member}`, entry);
      } else if (inPlace) {
        byTar.set(pack(object.pack), [...(byTar.get(object.pack) ?? []), entry.path]);
        // tar restores them; as a user without privileges it may not, so say it again (few commands).
        if (options.owners) chown.push(entry);
        chmod.push(entry);
      } else copy('f', `packs/${pack(object.pack)}/${member}`, entry);
    }
  }
  for (const [p, paths] of byTar)
    for (const b of batches(paths)) lines.push(`x ${p} ${b.map((path) => q(`./${path}`)).join(' ')}`);
  for (const [a, paths] of byArchive)
    for (const b of batches(paths)) lines.push(`y ${a} ${b.map((path) => q(`./${path}`)).join(' ')}`);
  for (const [o, paths] of group(chown, owner)) batched(`chown -h ${o}`, paths);
  for (const [m, paths] of group(chmod, (e) => octal(e.mode))) batched(`chmod ${m}`, paths);
  for (const [m, paths] of group(plan.dirModes, (e) => octal(e.mode))) batched(`chmod ${m}`, paths);
  if (lines.length === 0) return undefined;
  const begin: string[] = [];
  const end: string[] = [];
  for (const [object, hash] of options.verify ?? []) {
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new InvalidArgumentError('bad object hash');
    begin.push(`c ${q(object)} ${hash}`);
  }
  // Archives holding a member tar cannot select by name: unpacked whole into the store's tmp.
  for (const archive of unpack) begin.push(`u ${archive}`);
  if (unpack.size > 0) end.push(`rm -rf -- "$S/tmp/${unpacked}"`);
  if (options.record !== undefined) {
    if (/[^\x20-\x7e\n]/.test(options.record)) throw new InvalidArgumentError('unexpected record text');
    const tmp = `"$S/tmp/${ROLLBACK_RECORD}.${options.nonce}"`;
    const owner = `"$S/tmp/${RESTORE_OWNER}.${options.nonce}"`;
    begin.push(
      'mkdir -p -- "$S/tmp"',
      // This shell, named for a later listing to wait on, when /proc says when it started.
      "t=$(cut -d' ' -f22 /proc/$$/stat 2>/dev/null) || t=",
      `[ -z "$t" ] || { printf '%s %s\\n' "$$" "$t" > ${owner} && mv -f -- ${owner} "$S/${RESTORE_OWNER}"; }`,
      `printf '%s' ${q(options.record)} > ${tmp}`,
      `sync -- ${tmp} 2>/dev/null || :`,
      `mv -f -- ${tmp} "$S/${ROLLBACK_RECORD}"`,
      'sync -- "$S" 2>/dev/null || :',
    );
    end.push(`rm -f -- "$S/${ROLLBACK_RECORD}"`, `rm -f -- "$S/${RESTORE_OWNER}"`);
  }
  return binaryScript(
    [
      'set -e',
      `R=${q(dirs.root)} S=${q(dirs.store)} T=.agentbox-restore-${options.nonce}`,
      // f SOURCE PATH MODE OWNER MTIME: a fresh copy of a file of the store, put in place by
      // rename; g does the same from `PACK/K.tar:MEMBER`, a member of an archive.
      'f() { p=$2; o=$3; w=$4; m=$5; d=${p%/*}; [ "$d" != "$p" ] || d=.; t="$R/$d/$T"; cp -- "$S/$1" "$t"; z; }',
      'g() { p=$2; o=$3; w=$4; m=$5; d=${p%/*}; [ "$d" != "$p" ] || d=.; t="$R/$d/$T"; tar -xOf "$S/packs/${1%%:*}" "./${1#*:}" > "$t"; z; }',
      'z() {',
      '  [ "$w" = - ] || chown "$w" "$t"',
      '  chmod "$o" "$t"',
      '  touch -d "@$m" "$t"',
      '  mv -f -- "$t" "$R/$p"',
      '}',
      // c OBJECT HASH: the object is there and its content is what the manifest says.
      `c() { [ -f "$S/packs/$1" ] || exit ${RESTORE_OBJECT_MISSING}; h=$(sha256sum < "$S/packs/$1") || exit ${RESTORE_OBJECT_MISSING}; [ "\${h%% *}" = "$2" ] || exit ${RESTORE_OBJECT_MISMATCH}; }`,
      // x PACK PATHS...: objects that already carry their path, mode, owner and mtime, in one tar.
      'x() { p=$1; shift; (cd -- "$S/packs/$p" && tar -cf - "$@") | (cd -- "$R" && tar -xf - --numeric-owner); }',
      // y PACK/K PATHS...: the same from an archive (members named as they are: no pattern chars).
      'y() { a=$1; shift; (cd -- "$R" && tar -xf "$S/packs/$a.tar" --numeric-owner "$@"); }',
      // u PACK/K: unpack a whole archive into the store's tmp.
      `u() { mkdir -p -- "$S/tmp/${unpacked}/\${1%/*}-\${1#*/}" && tar -xf "$S/packs/$1.tar" -C "$S/tmp/${unpacked}/\${1%/*}-\${1#*/}" --numeric-owner; }`,
      ...begin,
      ...lines,
      ...end,
      '',
    ].join('\n'),
  );
}
