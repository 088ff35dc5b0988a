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
  // Through the test's proxy, the streamed output of a running exec never arrives on daytona (its
  // first line does when the emulator is reached directly); the cause is not found yet, so the
  // unreachable case cannot run here.
  unreachableGap:
    'KNOWN GAP: through the test proxy a running exec never streams its first output on daytona (cause not found yet)',
  open: ({ apiKey }, apiUrl) =>
    openSandbox({
      backend: 'daytona',
      config: { apiUrl, apiKey, polling: true },
      policy: { labels: { [RUN_LABEL]: runId } },
    }),
});
