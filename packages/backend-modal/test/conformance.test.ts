import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { describe, it } from 'vitest';
import { modal } from '../src/index.js';
import { emulatorProcessForFile, RUN_LABEL, runId } from './emulator.ts';

// The whole suite runs once per backend: the second Node.js pass of scripts/test-all.sh skips it
// (the backend's other tests still run the SDK on that Node).
const secondPass = process.env.AGENTBOX_TEST_PASS === 'second';

// The unmodified modal SDK against the Modal emulator (each sandbox a Docker container), run in
// a process of its own as a user would run it.
if (secondPass) {
  console.info('modal conformance: skipped in the second Node.js pass (it ran in the first)');
  describe.skip('modal (emulator) conformance', () => it('ran in the first pass', () => {}));
} else {
  const { config } = await emulatorProcessForFile();
  const labels = { [RUN_LABEL]: runId };

  const spec = { backend: 'modal', config, policy: { labels } } as const;
  runConformance({
    name: 'modal (emulator)',
    open: (opts) => openSandbox(spec, opts),
    // The warm-pool cases open pools of the same spec.
    pool: spec,
    // This run's sandboxes still running, found by tag the way sweep finds them.
    leftovers: async () => {
      const report = await modal.sweep!({ config: modal.configSchema.parse(config), dryRun: true, labels });
      return report.sandboxes.map((s) => s.id);
    },
    // An escape that let go of its output is out of reach of a command's kill; closing terminates the sandbox.
    escapedProcessesDie: 'close',
    timeScale: 2,
  });
}
