/**
 * The capture diff, shared by both stores: which scanned files can reuse what the previous
 * capture stored, and which must be copied. Change is detected by a stat key (inode, size,
 * mtime, ctime: `touch -d` can set mtime back, not ctime). The racy-ctime rule: a file whose
 * ctime is not older than the scan's own start is never trusted (a write in the same clock
 * tick would not show), so it is copied now and its key is not recorded for next time.
 */

/** A scanned file: its stat key now, and whether that key is too recent to trust. */
export interface ScannedFile {
  path: string;
  liveKey: string;
  racy: boolean;
}

/** What the previous capture knew of a path. */
export interface KnownFile {
  key?: string | undefined;
}

export interface CaptureDiff<S, K> {
  /** Unchanged since the previous capture: reuse its stored content. */
  reuse: { file: S; known: K }[];
  /** New or changed (or too recent to trust): copy. */
  copy: S[];
}

/** Split scanned files into reuse/copy; `usable` says whether a known entry still has its content. */
export function diffCapture<S extends ScannedFile, K extends KnownFile>(
  known: ReadonlyMap<string, K>,
  scanned: readonly S[],
  usable: (known: K) => boolean = () => true,
): CaptureDiff<S, K> {
  const out: CaptureDiff<S, K> = { reuse: [], copy: [] };
  for (const file of scanned) {
    const k = known.get(file.path);
    if (k && !file.racy && k.key !== undefined && k.key === file.liveKey && usable(k))
      out.reuse.push({ file, known: k });
    else out.copy.push(file);
  }
  return out;
}

/** The key to record for next time: none when the file was too recent to trust. */
export function keyToRecord(file: ScannedFile): string | undefined {
  return file.racy ? undefined : file.liveKey;
}

/** Whether a ctime (seconds, nanoseconds) is at or after the scan's clock: the racy rule. */
export function isRacy(ctime: { sec: bigint; nsec: bigint }, clock: { sec: bigint; nsec: bigint }): boolean {
  return ctime.sec > clock.sec || (ctime.sec === clock.sec && ctime.nsec >= clock.nsec);
}
