/** The Vercel emulator killed and restarted, or unreachable for a while (issue 18): scripts/emulator-faults.ts. */
import { fileURLToPath } from 'node:url';
import { openSandbox } from '@agentbox/core';
import { emulatorFaultSuite } from '../../../scripts/emulator-faults.ts';
import '../src/index.js';
import { RUN_LABEL, runId } from './emulator.ts';

interface Printed {
  url: string;
  token: string;
  teamId: string;
  projectId: string;
  instance: string;
}

emulatorFaultSuite<Printed>({
  backend: 'vercel',
  script: fileURLToPath(new URL('./fixtures/emulator-child.ts', import.meta.url)),
  secretOf: (info) => info.token,
  open: ({ token, teamId, projectId }, apiUrl) =>
    openSandbox({
      backend: 'vercel',
      config: { apiUrl, token, teamId, projectId },
      policy: { labels: { [RUN_LABEL]: runId } },
    }),
});
