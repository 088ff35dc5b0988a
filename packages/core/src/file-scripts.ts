/**
 * Shell scripts that read or write one file as a sandbox's own processes see it, for backends
 * whose file API would resolve paths outside the sandbox (a bubblewrap jail entered by a
 * command). The path and the limit or mode are arguments ($1, $2), never script text.
 */
import { type ErrorContext, fromErrno, IsADirectoryError, OutputLimitError } from './errors.js';

/** The errno each script's exit status stands for (6 from the read script: over the limit, size printed). */
export const FILE_SCRIPT_ERRNO: Readonly<Record<number, string>> = {
  3: 'ENOENT',
  4: 'EISDIR',
  5: 'EACCES',
  7: 'ENOTDIR',
};

/** Args: path, max bytes. Prints the file, or its size with exit 6 when it is over the limit. */
export const READ_FILE_SCRIPT = `f=$1
[ -e "$f" ] || exit 3
[ -d "$f" ] && exit 4
[ -r "$f" ] || exit 5
n=$(wc -c <"$f") || exit 5
if [ "$n" -gt "$2" ]; then printf '%s' "$n"; exit 6; fi
exec cat -- "$f"`;

/** Args: path, octal mode or ''. Writes stdin to the file, creating its parent directories. */
export const WRITE_FILE_SCRIPT = `f=$1
umask 022
d=$(dirname -- "$f")
if ! mkdir -p -- "$d" 2>/dev/null; then
  p=$d
  while [ ! -e "$p" ]; do p=$(dirname -- "$p"); done
  [ -d "$p" ] && exit 5
  exit 7
fi
[ -d "$f" ] && exit 4
cat >"$f" || exit 5
[ -z "$2" ] || chmod "$2" -- "$f" || exit 5`;

/** How one of the scripts above ended, as the backend that ran it saw it. */
export interface FileScriptRun {
  code: number | null;
  stdout: Uint8Array;
  stderr: string | Uint8Array;
}

const ERRNO_WORDS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  ENOTDIR: 'a parent is not a directory',
};

/** Throws the typed error a file script's failure stands for; returns on success. */
export function checkFileScript(run: FileScriptRun, path: string, context: ErrorContext): void {
  if (run.code === 0) return;
  const where = { ...context, subject: path };
  const errno = run.code === null ? undefined : FILE_SCRIPT_ERRNO[run.code];
  if (errno === 'EISDIR') throw new IsADirectoryError(`${path} is a directory`, where);
  const stderr = typeof run.stderr === 'string' ? run.stderr : Buffer.from(run.stderr).toString('utf8');
  const detail = errno ? (ERRNO_WORDS[errno] ?? errno) : stderr.trim() || `exit ${run.code}`;
  throw fromErrno(errno, `${path}: ${detail}`, where);
}

/** The bytes READ_FILE_SCRIPT printed, or the typed error for its failure (over the limit included). */
export function readScriptResult(
  run: FileScriptRun,
  path: string,
  maxBytes: number,
  context: ErrorContext,
): Uint8Array {
  if (run.code === 6) {
    const size = Number(Buffer.from(run.stdout).toString('latin1'));
    throw new OutputLimitError(
      `${path} is ${size} bytes, over the ${maxBytes}-byte read limit`,
      maxBytes,
      size,
      {
        ...context,
        subject: path,
      },
    );
  }
  checkFileScript(run, path, context);
  return run.stdout;
}
