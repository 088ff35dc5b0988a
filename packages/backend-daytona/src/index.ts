/**
 * @agentbox/backend-daytona: one Daytona sandbox per agentbox sandbox, through the official
 * `@daytonaio/sdk`. Importing this module registers the `daytona` backend with `openSandbox`.
 */
import { defineBackend, registerBackend } from '@agentbox/core/backend';
import { DaytonaConfigSchema } from './config.js';
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

export { type DaytonaConfig, type DaytonaConfigInput, DaytonaConfigSchema } from './config.js';
export { ID_LABEL, MANAGED_LABEL } from './labels.js';
export { DaytonaSandbox } from './sandbox.js';
