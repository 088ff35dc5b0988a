/**
 * Test trees made inside a sandbox by one `awk` process (busybox has no `split`, and a `dd` per
 * file costs a process each): `files` files of `bytes` bytes spread over directories of 100
 * files. Every file starts with its own number, so a content-addressed store cannot dedupe them.
 */

/** Shell text for `sh -c TEXT sh DIR FILES BYTES`: makes DIR holding the tree. */
export const MAKE_TREE = `mkdir -p "$1" && cd "$1" && awk -v n="$2" -v size="$3" 'BEGIN {
  srand(7); s = "";
  while (length(s) < size) s = s sprintf("%08x%08x", int(rand() * 4294967295), int(rand() * 4294967295));
  for (d = 0; d * 100 < n; d++) system("mkdir -p d" d);
  for (i = 0; i < n; i++) {
    f = "d" int(i / 100) "/f" i; head = sprintf("%d\\n", i);
    printf "%s%s", head, substr(s, 1, size - length(head)) > f; close(f);
  }
}'`;

/** argv running MAKE_TREE through `sh`. */
export function makeTree(dir: string, files: number, bytes: number): string[] {
  return ['sh', '-c', MAKE_TREE, 'sh', dir, String(files), String(bytes)];
}

/** "10k files/200 MB" */
export function describeTree(files: number, bytes: number): string {
  const count = files >= 1000 ? `${files / 1000}k` : String(files);
  const mb = (files * bytes) / 1e6;
  return `${count} files/${mb >= 1000 ? `${mb / 1000} GB` : `${Math.round(mb)} MB`}`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The 1-minute load average, printed beside figures (the machine is shared). */
export async function loadNote(what: string): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  console.error(`${what}: load average ${load}`);
}
