/**
 * @agentbox/backend-vercel: one Vercel Sandbox per agentbox sandbox, through the official
 * `@vercel/sandbox` SDK. Importing this module registers the `vercel` backend with `openSandbox`.
 */
import { defineBackend, registerBackend } from '@agentbox/core/backend';
import { type VercelConfig, VercelConfigSchema } from './config.js';
import { doctorVercel } from './doctor.js';
import { openVercelSandbox } from './sandbox.js';
import { sweepVercel } from './sweep.js';

export const vercel = defineBackend({
  kind: 'vercel',
  configSchema: VercelConfigSchema,
  open: openVercelSandbox,
  sweep: sweepVercel,
  doctor: doctorVercel,
});

registerBackend(vercel);

// Types `config` in `openSandbox({ backend: 'vercel', config })` for whoever imports this package.
declare module '@agentbox/core' {
  interface BackendConfigs {
    vercel: VercelConfig;
  }
}

export { type VercelConfig, VercelConfigSchema, type VercelResolvedConfig } from './config.js';
export { ID_LABEL, MANAGED_LABEL } from './labels.js';
export { VercelSandbox } from './sandbox.js';
