/**
 * The leak check (scripts/leak-check.ts): the suite's temp folders and default sandbox roots go to
 * a private TMPDIR; afterwards no folder may be left in it and no process (a jail, a command
 * that outlived its sandbox) may still run from it.
 */
import { startLeakWatch } from '../../../scripts/leak-check.ts';

export default function setup(): () => Promise<void> {
  return startLeakWatch({ name: 'backend-local' });
}
