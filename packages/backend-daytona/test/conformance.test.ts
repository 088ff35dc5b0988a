import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { describe, it } from 'vitest';
import '../src/index.js';
import { emulatorProcessForFile, RUN_LABEL, runId, runSandboxes } from './emulator.ts';

// The whole suite runs once per backend: the second Node.js pass of scripts/test-all.sh skips it
// (the backend's other tests still run the SDK on that Node).
const secondPass = process.env.AGENTBOX_TEST_PASS === 'second';

// The unmodified @daytonaio/sdk against the Daytona emulator (each sandbox a Docker container),
// run in a process of its own as a user would run it.
if (secondPass) {
  console.info('daytona conformance: skipped in the second Node.js pass (it ran in the first)');
  describe.skip('daytona (emulator) conformance', () => it('ran in the first pass', () => {}));
} else {
  const { config, sdk } = await emulatorProcessForFile();

  const spec = { backend: 'daytona', config, policy: { labels: { [RUN_LABEL]: runId } } } as const;
  runConformance({
    name: 'daytona (emulator)',
    open: (opts) => openSandbox(spec, opts),
    // The warm-pool cases open pools of the same spec.
    pool: spec,
    leftovers: () => runSandboxes(sdk),
    // An escape that let go of its output is out of reach of a command's kill; closing deletes the sandbox.
    escapedProcessesDie: 'close',
    timeScale: 2,
  });
}
