/**
 * Writes that survive a crash of this process (and, with the fsyncs, of the machine): content
 * goes to a temporary name, is flushed, and is renamed into place, so a reader sees the whole
 * file or none of it; the directory is flushed after a rename that must last.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { dirname } from 'node:path';

/** Prefix of every temporary name the stores use: never a checkpoint id, an object or a manifest. */
export const TEMP_PREFIX = '.tmp-';

/** Flush a file's data (any descriptor of the inode will do, so a read-only one suffices). */
export async function syncFile(path: string | Buffer): Promise<void> {
  const handle = await fs.open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flush a directory, so that the names created or renamed in it last. */
export async function syncDir(path: string): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    await handle.sync();
  } catch (error) {
    // Some filesystems refuse fsync on a directory (EINVAL): there is nothing more to do there.
    if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
  } finally {
    await handle.close();
  }
}

/** Write `data` to a new file and flush it; the file is removed again when the write fails. */
export async function writeNewFileSynced(
  path: string,
  data: string | Uint8Array,
  mode = 0o600,
): Promise<void> {
  const handle = await fs.open(path, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await fs.rm(path, { force: true });
    throw error;
  }
  await handle.close();
}

/**
 * Replace `path` with `data` atomically: a temporary file beside it, flushed, renamed over it,
 * and (with `durable`) the directory flushed so that the new name lasts.
 */
export async function writeAtomic(
  path: string,
  data: string | Uint8Array,
  options: { durable: boolean; mode?: number } = { durable: true },
): Promise<void> {
  const tmp = `${dirname(path)}/${TEMP_PREFIX}${randomUUID().slice(0, 8)}`;
  if (options.durable) await writeNewFileSynced(tmp, data, options.mode);
  else await fs.writeFile(tmp, data, { mode: options.mode ?? 0o600 });
  try {
    await fs.rename(tmp, path);
  } catch (error) {
    await fs.rm(tmp, { force: true });
    throw error;
  }
  if (options.durable) await syncDir(dirname(path));
}

/** The names in `dir`, or none when it does not exist (yet). */
export async function readdirOrNone(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Remove temporary files a crash left in `dir` (older than `minAgeMs`, so a writer in another process keeps its own). */
export async function removeStaleTemps(dir: string, minAgeMs: number): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  const cutoff = Date.now() - minAgeMs;
  for (const name of names) {
    if (!name.startsWith(TEMP_PREFIX) && !/\.json\.tmp-[0-9a-f]{8}$/.test(name)) continue;
    const st = await fs.lstat(`${dir}/${name}`).catch(() => undefined);
    if (st && st.mtimeMs < cutoff) await fs.rm(`${dir}/${name}`, { force: true, recursive: true });
  }
}
