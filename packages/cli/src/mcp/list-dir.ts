/**
 * Listing a directory in the sandbox. The contract has no listing call, so a small POSIX sh script
 * runs as argv (the path and the limit are its arguments, never script text): it prints one
 * NUL-terminated record per entry, so any name (spaces, newlines) comes back whole.
 */
import { type SandboxBackend, SandboxUnavailableError } from '@agentbox/core';
import { FILE_SCRIPT_ERRNO, fromErrno } from '@agentbox/core/backend';

export type EntryType = 'file' | 'directory' | 'symlink' | 'other';

export interface DirEntry {
  name: string;
  type: EntryType;
  /** Size in bytes of a regular file; null for anything else. */
  sizeBytes: number | null;
}

export interface Listing {
  path: string;
  entries: DirEntry[];
  /** True when the directory holds more than `limit` entries and only the first were listed. */
  truncated: boolean;
}

// Exit 3 / 7 / 5: the path is missing / not a directory / not readable (FILE_SCRIPT_ERRNO).
// Entries come sorted by the shell's glob; after `limit` of them, one more line says there are more.
const LIST_SCRIPT = `d=$1
[ -e "$d" ] || exit 3
[ -d "$d" ] || exit 7
cd -- "$d" 2>/dev/null && [ -r . ] || exit 5
n=0
for f in * .[!.]* ..?*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  if [ "$n" -ge "$2" ]; then printf 'more\\0'; exit 0; fi
  n=$((n + 1))
  if [ -L "$f" ]; then t=symlink; elif [ -d "$f" ]; then t=directory; elif [ -f "$f" ]; then t=file; else t=other; fi
  s=
  if [ "$t" = file ]; then s=$(stat -c %s -- "$f" 2>/dev/null || wc -c <"$f" | tr -d ' '); fi
  printf '%s %s %s\\0' "$t" "\${s:--}" "$f"
done`;

const TYPES = new Set<string>(['file', 'directory', 'symlink', 'other']);

export async function listDir(
  sandbox: SandboxBackend,
  path: string,
  limit: number,
  signal: AbortSignal,
): Promise<Listing> {
  const context = { backend: sandbox.kind, operation: 'list_dir', sandboxId: sandbox.id, subject: path };
  const result = await sandbox.exec(['sh', '-c', LIST_SCRIPT, 'sh', path, String(limit)], { signal });
  const errno = FILE_SCRIPT_ERRNO[result.exitCode];
  if (errno) throw fromErrno(errno, `cannot list ${path}: ${errno}`, context);
  if (result.exitCode !== 0)
    throw new SandboxUnavailableError(
      `listing ${path} failed with exit code ${result.exitCode}: ${result.stderr.trim()}`,
      context,
    );
  const entries: DirEntry[] = [];
  let truncated = false;
  for (const record of result.stdout.split('\0')) {
    if (record === '') continue;
    if (record === 'more') {
      truncated = true;
      continue;
    }
    const [type = '', size = '-'] = record.split(' ', 2);
    const name = record.slice(type.length + size.length + 2);
    entries.push({
      name,
      type: TYPES.has(type) ? (type as EntryType) : 'other',
      sizeBytes: /^\d+$/.test(size) ? Number(size) : null,
    });
  }
  return { path, entries, truncated };
}
