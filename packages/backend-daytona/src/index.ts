/**
 * @agentbox/backend-daytona: one Daytona sandbox per agentbox sandbox, through the official
 * `@daytonaio/sdk`. Importing this module registers the `daytona` backend with `openSandbox`.
 */
import { defineBackend, registerBackend } from '@agentbox/core/backend';
import { type DaytonaConfig, DaytonaConfigSchema } from './config.js';
import { doctorDaytona } from './doctor.js';
import { openDaytonaSandbox } from './sandbox.js';
import { sweepDaytona } from './sweep.js';

export const daytona = defineBackend({
  kind: 'daytona',
  configSchema: DaytonaConfigSchema,
  open: openDaytonaSandbox,
  sweep: sweepDaytona,
  doctor: doctorDaytona,
});

registerBackend(daytona);

// Types `config` in `openSandbox({ backend: 'daytona', config })` for whoever imports this package.
declare module '@agentbox/core' {
  interface BackendConfigs {
    daytona: DaytonaConfig;
  }
}

export { type DaytonaConfig, DaytonaConfigSchema, type DaytonaResolvedConfig } from './config.js';
export { ID_LABEL, MANAGED_LABEL } from './labels.js';
export { DaytonaSandbox } from './sandbox.js';
