/**
 * File helpers both emulators use: the script that streams a file into a container as its own
 * user, and the table from a failed file command's stderr to an HTTP status.
 */
import { HttpFailure } from './http.js';

/** Args: `$0` the path. Writes stdin to it, creating parent directories; refuses a directory. */
export const UPLOAD_SCRIPT = [
  'p=$0',
  'd=$(dirname -- "$p") && mkdir -p -- "$d" || exit 1',
  '[ -d "$p" ] && { echo "$p: Is a directory" >&2; exit 1; }',
  'exec cat > "$p"',
].join('\n');

/** Args: `$0` the path. Prints the file; refuses a directory. */
export const DOWNLOAD_SCRIPT = '[ -d "$0" ] && { echo "$0: Is a directory" >&2; exit 1; }; exec cat -- "$0"';

/** A failed file command's stderr as the status a provider answers with. */
export function fileFailure(stderr: Buffer, path: string): HttpFailure {
  const text = stderr.toString('utf8').trim();
  if (/No such file|can't stat|not found/i.test(text))
    return new HttpFailure(404, `${path}: no such file or directory`, 'NOT_FOUND');
  if (/Permission denied|Operation not permitted/i.test(text))
    return new HttpFailure(403, `${path}: permission denied`, 'FORBIDDEN');
  if (/Is a directory/i.test(text)) return new HttpFailure(400, `${path}: is a directory`, 'IS_A_DIRECTORY');
  if (/Not a directory/i.test(text))
    return new HttpFailure(400, `${path}: not a directory`, 'NOT_A_DIRECTORY');
  return new HttpFailure(400, `${path}: ${text || 'file operation failed'}`);
}
