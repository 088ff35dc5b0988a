/**
 * `/__modal/.bin/modal-sandbox-fs-tools`, the helper the SDK's `sandbox.filesystem` runs as an
 * exec with one JSON argument (`{"ReadFile":{"path":...}}`). The emulator turns each request into
 * a fixed shell script run in the container (the path one quoted argument), and its exit status
 * into the JSON error the SDK parses from stderr (`{"error_kind": ..., "message": ...}`).
 */
export const FS_TOOLS_PATH = '/__modal/.bin/modal-sandbox-fs-tools';

/** Exit statuses of the scripts below, and the error kind each stands for. */
const KINDS: Record<number, { kind: string; message: string }> = {
  10: { kind: 'NotFound', message: 'No such file or directory' },
  11: { kind: 'IsDirectory', message: 'Is a directory' },
  12: { kind: 'NotDirectory', message: 'Not a directory' },
  13: { kind: 'PermissionDenied', message: 'Permission denied' },
  14: { kind: 'DirectoryNotEmpty', message: 'Directory not empty' },
  15: { kind: 'PathAlreadyExists', message: 'File exists' },
};

// Exits 12 when an ancestor of $1 is not a directory, else 13.
const ANCESTOR_CHECK =
  'a=$(dirname -- "$1"); while [ "$a" != / ]; do if [ -e "$a" ] && [ ! -d "$a" ]; then exit 12; fi; a=$(dirname -- "$a"); done; exit 13';

const SCRIPTS: Record<string, string> = {
  ReadFile: [
    '[ -e "$1" ] || exit 10',
    '[ -d "$1" ] && exit 11',
    '[ -r "$1" ] || exit 13',
    'exec cat -- "$1"',
  ].join('\n'),
  WriteFile: [
    '[ -d "$1" ] && exit 11',
    'd=$(dirname -- "$1")',
    `mkdir -p -- "$d" 2>/dev/null || { ${ANCESTOR_CHECK}; }`,
    'cat >"$1" 2>/dev/null || exit 13',
  ].join('\n'),
  MakeDirectory: [
    '[ -e "$1" ] && { [ "$2" = true ] && [ -d "$1" ] && exit 0; exit 15; }',
    'if [ "$2" = true ]; then mkdir -p -- "$1" 2>/dev/null && exit 0; else',
    ' [ -d "$(dirname -- "$1")" ] || { [ -e "$(dirname -- "$1")" ] && exit 12; exit 10; }',
    ' mkdir -- "$1" 2>/dev/null && exit 0; fi',
    ANCESTOR_CHECK,
  ].join('\n'),
  Remove: [
    '[ -e "$1" ] || [ -L "$1" ] || exit 10',
    'if [ -d "$1" ] && [ ! -L "$1" ]; then',
    ' if [ "$2" = true ]; then rm -rf -- "$1" 2>/dev/null || exit 13; exit 0; fi',
    ' [ -z "$(ls -A -- "$1")" ] || exit 14',
    ' rmdir -- "$1" 2>/dev/null || exit 13; exit 0',
    'fi',
    'rm -f -- "$1" 2>/dev/null || exit 13',
  ].join('\n'),
};

/** The container command for one fs-tools request, or why it is not emulated. */
export function fsToolsCommand(json: string | undefined): { argv: string[] } | { unsupported: string } {
  let request: Record<string, { path?: unknown; parents?: unknown; recursive?: unknown }>;
  try {
    request = JSON.parse(json ?? '');
  } catch {
    return { unsupported: 'fs-tools: the argument is not JSON' };
  }
  const [op] = Object.keys(request ?? {});
  const body = op ? request[op] : undefined;
  const script = op ? SCRIPTS[op] : undefined;
  if (!script || typeof body?.path !== 'string')
    return { unsupported: `fs-tools: ${op ?? 'an empty request'} is not emulated` };
  const flag = body.parents === true || body.recursive === true ? 'true' : 'false';
  return { argv: ['/bin/sh', '-c', script, 'modal-sandbox-fs-tools', body.path, flag] };
}

/** The stderr the SDK expects for a script's exit status (undefined: not one of ours). */
export function fsToolsError(status: number): Buffer | undefined {
  const found = KINDS[status];
  if (!found) return undefined;
  return Buffer.from(JSON.stringify({ error_kind: found.kind, message: found.message, detail: '' }));
}
