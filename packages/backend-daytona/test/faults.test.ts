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
  open: ({ apiKey }, apiUrl) =>
    openSandbox({
      backend: 'daytona',
      config: { apiUrl, apiKey, polling: true },
      policy: { labels: { [RUN_LABEL]: runId } },
    }),
});
