import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import '../src/index.js';
import { emulatorProcessForFile, RUN_LABEL, runId, runSandboxes } from './emulator.ts';

// The unmodified @daytonaio/sdk against the Daytona emulator (each sandbox a Docker container),
// run in a process of its own as a user would run it.
const { config, sdk } = await emulatorProcessForFile();

runConformance({
  name: 'daytona (emulator)',
  open: (opts) =>
    openSandbox({ backend: 'daytona', config, policy: { labels: { [RUN_LABEL]: runId } } }, opts),
  leftovers: () => runSandboxes(sdk),
  // An escape that let go of its output is out of reach of a command's kill; closing deletes the sandbox.
  escapedProcessesDie: 'close',
  timeScale: 2,
});
