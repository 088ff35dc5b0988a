/** Why the bubblewrap tests cannot run here (undefined when they can). */
import { spawnSync } from 'node:child_process';

function probe(): string | undefined {
  const r = spawnSync('bwrap', ['--unshare-user', '--unshare-pid', '--ro-bind', '/', '/', 'true'], {
    encoding: 'utf8',
  });
  if (r.error) return `bubblewrap is not installed (${r.error.message}); scripts/provision.sh installs it`;
  if (r.status !== 0) return `bubblewrap cannot create namespaces here: ${r.stderr.trim()}`;
  return undefined;
}

export const bwrapMissing = probe();
