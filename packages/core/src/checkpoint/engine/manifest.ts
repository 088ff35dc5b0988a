/**
 * Manifest schemas. A manifest read back from a store is untrusted input: it is parsed with
 * these schemas before any of it is used, and a failure is a {@link CheckpointCorruptError}.
 * Paths are normalised (no empty, `.` or `..` component, no leading `/`, no NUL) and every
 * entry's parent is a directory of the same manifest, so nothing a restore creates can land
 * outside the checkpointed root.
 */
import { z } from 'zod';
import { CheckpointCorruptError, type ErrorContext } from '../../errors.js';
import type { CheckpointInfo } from '../../types.js';
import { asciiJson } from './seal.js';

export type EntryType = 'file' | 'dir' | 'symlink';

export const CHECKPOINT_ID = /^ckpt-[a-z0-9]+-[0-9a-f]{8}$/;
export const SHA256 = /^[0-9a-f]{64}$/;
/** A pack of the exec store: 8 random bytes in hex. */
export const PACK_ID = /^[0-9a-f]{16}$/;

/** True when `path` is relative, `/`-separated and has no empty, `.` or `..` component. */
export function isNormalPath(path: string): boolean {
  if (path.length === 0 || path.includes('\0')) return false;
  return path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const uid = int(0, 0xfffffffe);
const mode = int(0, 0o7777);
const size = int(0, Number.MAX_SAFE_INTEGER);
const sha256 = z.string().regex(SHA256, 'must be a SHA-256 in lowercase hex');
/** Binary string (one char per byte, no NUL), as the exec store keeps names. */
const binary = z.string().regex(/^[\x01-\xff]+$/, 'must be a binary string without NUL');
const binaryPath = binary.refine(isNormalPath, 'must be a normalised relative path');

export const checkpointInfoSchema = z.object({
  id: z.string().regex(CHECKPOINT_ID),
  label: z
    .string()
    .nullish()
    .transform((l) => l ?? undefined),
  createdAt: z.iso.datetime(),
  entries: size,
  bytesStored: size,
});

/**
 * Where the exec store keeps a file's content: `packs/<pack>/<path>` (path defaults to the
 * entry's), or with `tar`, the member `./<path>` of the archive `packs/<pack>/<tar>.tar`.
 */
export const execObjectRefSchema = z.strictObject({
  pack: z.string().regex(PACK_ID),
  path: binaryPath.optional(),
  tar: int(0, 1_000_000_000).optional(),
});
export type ExecObjectRef = z.infer<typeof execObjectRefSchema>;

export const execEntrySchema = z.strictObject({
  /** Relative to the root, `/`-separated, as a binary string of the raw bytes. */
  path: binaryPath,
  type: z.enum(['file', 'dir', 'symlink']),
  /** Permission bits (mode & 0o7777). */
  mode,
  uid,
  gid: uid,
  /** Files: size, SHA-256 of the content, mtime (whole seconds), where the content is kept. */
  size: size.optional(),
  hash: sha256.optional(),
  mtimeSec: int(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER).optional(),
  object: execObjectRefSchema.optional(),
  /** Files: the object already carries this entry's path, mode, owner and mtime (restorable by tar). */
  exact: z.literal(true).optional(),
  /**
   * Files: the stat key seen when captured (inode:size:mtime:ctime, the ctime to the nanosecond),
   * absent when too recent to trust. Keys written by earlier versions carry the mtime's nanoseconds too.
   */
  key: z
    .string()
    .regex(/^\d+:\d+:-?\d+(\.\d{9})?:-?\d+\.\d{9}$/)
    .optional(),
  /** Symlinks: the target (never followed by a restore). */
  target: binary.optional(),
});
export type ExecManifestEntry = z.infer<typeof execEntrySchema>;

export const treeEntrySchema = z.strictObject({
  /** Relative to the root, `/`-separated, as a binary string of the raw bytes. */
  path: binaryPath,
  type: z.enum(['file', 'dir', 'symlink']),
  mode,
  /** Files: SHA-256 of the content. */
  hash: sha256.optional(),
  size: size.optional(),
  /** Files: modification time to restore, in nanoseconds since the epoch (decimal). */
  mtimeNs: z
    .string()
    .regex(/^-?\d{1,22}$/)
    .optional(),
  /** Symlinks: the link target (never followed by a restore). */
  target: binary.optional(),
});
export type ManifestEntry = z.infer<typeof treeEntrySchema>;

type AnyEntry = { path: string; type: EntryType; hash?: string | undefined; target?: string | undefined };

/** Rules across entries: unique paths, parents that are directories of the manifest, type-specific fields. */
function checkEntries(
  entries: readonly (AnyEntry & { object?: unknown; size?: number | undefined })[],
  ctx: z.RefinementCtx,
  needsObject: boolean,
): void {
  const types = new Map<string, EntryType>();
  for (const [i, e] of entries.entries()) {
    if (types.has(e.path))
      ctx.addIssue({ code: 'custom', path: ['entries', i, 'path'], message: 'duplicate path' });
    types.set(e.path, e.type);
  }
  for (const [i, e] of entries.entries()) {
    const slash = e.path.lastIndexOf('/');
    if (slash > 0 && types.get(e.path.slice(0, slash)) !== 'dir')
      ctx.addIssue({
        code: 'custom',
        path: ['entries', i, 'path'],
        message: 'parent is not a directory of the manifest',
      });
    const bad = (message: string) => ctx.addIssue({ code: 'custom', path: ['entries', i], message });
    if (e.type === 'file') {
      if (!e.hash || e.size === undefined) bad('a file needs a hash and a size');
      if (needsObject && !e.object) bad('a file needs an object');
      if (e.target !== undefined) bad('only a symlink has a target');
    } else if (e.type === 'symlink') {
      if (e.target === undefined) bad('a symlink needs a target');
      if (e.hash !== undefined || e.object !== undefined) bad('only a file has content');
    } else if (e.hash !== undefined || e.object !== undefined || e.target !== undefined)
      bad('a directory has no content');
  }
}

/** An archive of the exec store, `<pack>/<tar>`, as a key of a manifest's `tars`. */
export const TAR_KEY = /^[0-9a-f]{16}\/\d{1,10}$/;

export const execManifestSchema = z
  .strictObject({
    version: z.literal(2),
    info: checkpointInfoSchema,
    entries: z.array(execEntrySchema),
    /** The SHA-256 of each archive an entry's object lies in (the archive's bytes as stored). */
    tars: z.record(z.string().regex(TAR_KEY), sha256).optional(),
  })
  .superRefine((m, ctx) => {
    checkEntries(m.entries, ctx, true);
    for (const [i, e] of m.entries.entries())
      if (e.object?.tar !== undefined && !m.tars?.[`${e.object.pack}/${e.object.tar}`])
        ctx.addIssue({ code: 'custom', path: ['entries', i, 'object'], message: 'its archive has no hash' });
  });
export type ExecManifest = z.infer<typeof execManifestSchema>;

/**
 * `asciiJson(manifest)` from its entries' JSON, each made once: a capture that carries most
 * entries over from the last one does not serialize them again.
 */
export function manifestJson(manifest: ExecManifest, entries: readonly string[]): string {
  const tars = manifest.tars === undefined ? '' : `,"tars":${asciiJson(manifest.tars)}`;
  return `{"version":${manifest.version},"info":${asciiJson(manifest.info)},"entries":[${entries.join(',')}]${tars}}`;
}

export const treeManifestSchema = z
  .strictObject({
    /** 2: names are binary strings. (Absent in manifests written before; their names were ASCII or text.) */
    version: z.literal(2).optional(),
    info: checkpointInfoSchema,
    entries: z.array(treeEntrySchema),
  })
  .superRefine((m, ctx) => checkEntries(m.entries, ctx, false));
export type Manifest = z.infer<typeof treeManifestSchema>;

/**
 * Parse untrusted JSON text with a schema; `id` (when given) must be the manifest's own id.
 * Any failure is a CheckpointCorruptError naming the first problems.
 */
export function parseChecked<S extends z.ZodType<{ info: CheckpointInfo } | CheckpointInfo>>(
  schema: S,
  text: string,
  id: string | undefined,
  context: ErrorContext,
): z.infer<S> {
  const corrupt = (why: string, cause?: unknown) =>
    new CheckpointCorruptError(`checkpoint ${id ?? ''} is corrupt: ${why}`.replace('  ', ' '), {
      ...context,
      subject: id,
      cause,
    });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw corrupt('not JSON', error);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success)
    throw corrupt(
      parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; '),
    );
  const value = parsed.data as { info: CheckpointInfo } | CheckpointInfo;
  const own = 'info' in value ? value.info.id : value.id;
  if (id !== undefined && own !== id) throw corrupt(`it names itself ${JSON.stringify(own)}`);
  return parsed.data;
}
