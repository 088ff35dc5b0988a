/**
 * @agentbox/backend-docker: one hardened container per sandbox. Importing this module registers
 * the `docker` backend with `openSandbox`.
 */
import { defineBackend, registerBackend } from '@agentbox/core/backend';
import { type DockerConfig, DockerConfigSchema } from './config.js';
import { doctorDocker } from './doctor.js';
import { openDockerSandbox } from './sandbox.js';
import { sweepDockerSandboxes } from './sweep.js';

export const docker = defineBackend({
  kind: 'docker',
  configSchema: DockerConfigSchema,
  open: openDockerSandbox,
  sweep: sweepDockerSandboxes,
  doctor: ({ config }) => doctorDocker(config),
});

registerBackend(docker);

// Types `config` in `openSandbox({ backend: 'docker', config })` for whoever imports this package.
declare module '@agentbox/core' {
  interface BackendConfigs {
    docker: DockerConfig;
  }
}

export {
  DEFAULT_IMAGE,
  type DockerConfig,
  type DockerConfigInput,
  DockerConfigSchema,
  type DockerResolvedConfig,
} from './config.js';
export { DEFAULTS as DOCKER_POLICY_DEFAULTS } from './hardening.js';
export { LABEL, labelFilter } from './labels.js';
export { DockerSandbox } from './sandbox.js';
export { type SweepOptions, type SweepResult, type SweptObject, sweepDocker } from './sweep.js';
