/**
 * @agentbox/backend-modal: agentbox sandboxes on Modal, through the official `modal` SDK.
 * Importing it registers the `modal` backend.
 */
import { defineBackend, registerBackend } from '@agentbox/core/backend';
import { type ModalConfig, ModalConfigSchema } from './config.js';
import { doctorModal } from './doctor.js';
import { openModalSandbox } from './sandbox.js';
import { sweepModal } from './sweep.js';

export const modal = defineBackend({
  kind: 'modal',
  configSchema: ModalConfigSchema,
  open: openModalSandbox,
  sweep: sweepModal,
  doctor: doctorModal,
});

registerBackend(modal);

// Types `config` in `openSandbox({ backend: 'modal', config })` for whoever imports this package.
declare module '@agentbox/core' {
  interface BackendConfigs {
    modal: ModalConfig;
  }
}

export { type ModalConfig, ModalConfigSchema, type ModalResolvedConfig } from './config.js';
export { ID_LABEL, MANAGED_LABEL } from './labels.js';
export { ModalSandbox } from './sandbox.js';
