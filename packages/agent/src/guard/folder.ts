/** Reads a skill folder from the host for the scanner without following symlinks or reading huge files whole. */
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { DEFAULT_GUARD_LIMITS, type GuardLimits, type SkillFile } from './scanner.js';

export async function readSkillFolder(root: string, limits: GuardLimits = {}): Promise<SkillFile[]> {
  const maxFileBytes = limits.maxFileBytes ?? DEFAULT_GUARD_LIMITS.maxFileBytes;
  // Read a little past the limit so the scanner sees the file is too large.
  const readBytes = maxFileBytes + 1;
  const maxFiles = (limits.maxFiles ?? DEFAULT_GUARD_LIMITS.maxFiles) + 1;
  const files: SkillFile[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      if (files.length >= maxFiles) return;
      const full = join(dir, entry.name);
      const path = relative(root, full).split(sep).join('/');
      const info = await lstat(full);
      if (info.isSymbolicLink()) files.push({ path, size: 0, symlinkTarget: await readlink(full) });
      else if (info.isDirectory()) await walk(full);
      else if (info.isFile())
        files.push({ path, size: info.size, data: await readHead(full, Math.min(info.size, readBytes)) });
      else files.push({ path, size: info.size, data: new Uint8Array([0]) });
    }
  };
  const top = await lstat(root);
  if (top.isFile()) {
    const name = root.split(sep).pop() ?? root;
    return [{ path: name, size: top.size, data: await readHead(root, Math.min(top.size, readBytes)) }];
  }
  await walk(root);
  return files;
}

async function readHead(path: string, bytes: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(bytes);
    let offset = 0;
    while (offset < bytes) {
      const { bytesRead } = await handle.read(buffer, offset, bytes - offset, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
    }
    return buffer.subarray(0, offset);
  } finally {
    await handle.close();
  }
}
