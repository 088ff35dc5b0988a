/**
 * @agentbox/backend-kubernetes: one hardened pod per agentbox sandbox (a plain Pod, an
 * agent-sandbox `Sandbox`, or a `SandboxClaim` on a warm pool), through the official
 * `@kubernetes/client-node`. Importing this module registers the `kubernetes` backend with
 * `openSandbox`.
 */
import { defineBackend, registerBackend } from '@agentbox/core/backend';
import { type KubernetesConfig, KubernetesConfigSchema } from './config.js';
import { doctorKubernetes } from './doctor.js';
import { openKubernetesSandbox } from './sandbox.js';
import { sweepKubernetes } from './sweep.js';

export const kubernetes = defineBackend({
  kind: 'kubernetes',
  configSchema: KubernetesConfigSchema,
  open: openKubernetesSandbox,
  sweep: sweepKubernetes,
  doctor: doctorKubernetes,
});

registerBackend(kubernetes);

declare module '@agentbox/core' {
  interface BackendConfigs {
    kubernetes: KubernetesConfig;
  }
}

export { type KubernetesConfig, KubernetesConfigSchema, type KubernetesResolvedConfig } from './config.js';
export { ID_LABEL, MANAGED_LABEL } from './labels.js';
export { KubernetesSandbox } from './sandbox.js';
export {
  createKubernetesWarmPool,
  type KubernetesWarmPool,
  type KubernetesWarmPoolOptions,
} from './warm-pool.js';
