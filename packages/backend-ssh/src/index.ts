/**
 * @agentbox/backend-ssh: a sandbox on an SSH host. One connection per sandbox (reused, and
 * re-opened after a drop), host keys verified against known_hosts or a pinned fingerprint,
 * files over SFTP, a private workspace directory per sandbox, checkpoints kept on the host,
 * and `sweepSsh` for what crashed sandboxes left on a host.
 * Importing the package registers the `ssh` backend with openSandbox.
 */
import { defineBackend, registerBackend } from '@agentbox/core/backend';
import { type SshConfig, SshConfigSchema } from './config.js';
import { doctorSsh } from './doctor.js';
import { openSsh } from './sandbox.js';
import { sweepSshSandboxes } from './sweep.js';

export { type SshConfig, SshConfigSchema, type SshResolvedConfig } from './config.js';
export { HostKeyVerificationError } from './connect.js';
export { SshConnection } from './connection.js';
export { fingerprintSha256, hostFieldMatches, knownHostsName, parseKnownHosts } from './known-hosts.js';
export { SshSandbox, sshEnforcement } from './sandbox.js';
export { type SshSweepOptions, type SweptSshSandbox, sweepSsh } from './sweep.js';

export const ssh = defineBackend({
  kind: 'ssh',
  configSchema: SshConfigSchema,
  open: openSsh,
  sweep: sweepSshSandboxes,
  doctor: ({ config, signal }) => doctorSsh(config, signal),
});
registerBackend(ssh);

// Types `config` in `openSandbox({ backend: 'ssh', config })` for whoever imports this package.
declare module '@agentbox/core' {
  interface BackendConfigs {
    ssh: SshConfig;
  }
}
