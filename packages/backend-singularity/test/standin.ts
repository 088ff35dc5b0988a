/**
 * The test stand-in for the apptainer CLI (test/standin/, see its README) and the busybox root
 * filesystem its instances run: what the tests need, or why they cannot run here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const STANDIN = join(import.meta.dirname, 'standin', 'apptainer');
const BUSYBOX = '/usr/bin/busybox';

/** Why the stand-in cannot run here (it mounts and unshares, so it needs root), or undefined. */
export const standinMissing: string | undefined =
  process.getuid?.() !== 0
    ? 'the apptainer stand-in needs root (it mounts an overlay and unshares namespaces)'
    : !existsSync(BUSYBOX)
      ? `${BUSYBOX} is missing (Debian: apt-get install busybox-static)`
      : undefined;

/** A busybox root filesystem (a sandbox-directory image), built once per busybox binary and reused. */
export function busyboxRootfs(): string {
  const version = statSync(BUSYBOX).mtimeMs.toFixed(0);
  const dir = join(tmpdir(), `agentbox-singularity-rootfs-${version}`);
  if (existsSync(join(dir, 'bin', 'sh'))) return dir;
  const staging = mkdtempSync(join(tmpdir(), 'agentbox-singularity-rootfs-build-'));
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'tmp', 'proc', 'dev', 'workspace'])
    mkdirSync(join(staging, d), { recursive: true });
  execFileSync('cp', [BUSYBOX, join(staging, 'bin', 'busybox')]);
  // Links made inside the new root point at its own /bin/busybox.
  execFileSync('chroot', [staging, '/bin/busybox', '--install', '-s', '/bin']);
  writeFileSync(
    join(staging, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n',
  );
  writeFileSync(join(staging, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  try {
    renameSync(staging, dir);
  } catch {
    // Another test file built it meanwhile.
    rmSync(staging, { recursive: true, force: true });
  }
  return dir;
}

/** A private state directory for the stand-in (its instances' records), set for this test process. */
export function useStandinState(): string {
  const state = mkdtempSync(join(tmpdir(), 'agentbox-apptainer-standin-state-'));
  process.env.AGENTBOX_APPTAINER_STANDIN_STATE = state;
  return state;
}
