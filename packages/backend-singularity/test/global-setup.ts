/**
 * The leak check (scripts/leak-check.ts): the suite's temp folders, sandbox roots and stand-in
 * state go to a private TMPDIR; afterwards no folder may be left in it (the busybox image the
 * tests build once is a cache) and no process (an instance's init, a command) may still run from it.
 */
import { startLeakWatch } from '../../../scripts/leak-check.ts';

export default function setup(): () => Promise<void> {
  return startLeakWatch({ name: 'backend-singularity', caches: [/^agentbox-singularity-rootfs-/] });
}
