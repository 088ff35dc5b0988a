/** The Daytona emulator killed and restarted, or unreachable for a while (issue 18): scripts/emulator-faults.ts. */
import { fileURLToPath } from 'node:url';
import { openSandbox } from '@agentbox/core';
import { emulatorFaultSuite } from '../../../scripts/emulator-faults.ts';
import '../src/index.js';
import { RUN_LABEL, runId } from './emulator.ts';

interface Printed {
  url: string;
  apiKey: string;
  instance: string;
}

emulatorFaultSuite<Printed>({
  backend: 'daytona',
  script: fileURLToPath(new URL('./fixtures/emulator-child.ts', import.meta.url)),
  secretOf: (info) => info.apiKey,
  // Found by this test and not fixed yet: with the API unreachable, an exec in flight never settles.
  unreachableGap:
    'KNOWN GAP: an exec in flight when the Daytona API becomes unreachable does not settle (hangs past 60 s)',
  open: ({ apiKey }, apiUrl) =>
    openSandbox({
      backend: 'daytona',
      config: { apiUrl, apiKey, polling: true },
      policy: { labels: { [RUN_LABEL]: runId } },
    }),
});
