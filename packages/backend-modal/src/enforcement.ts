/** Which policy controls Modal enforces. */
import type { ControlStatus, EnforcementReport, ParsedPolicy } from '@agentbox/core';
import { enforcementReport } from '@agentbox/core/backend';

const no = (detail: string): ControlStatus => ({ status: 'not-supported', detail });
const yes = (detail: string): ControlStatus => ({ status: 'enforced', detail });

/** What `sandboxes.create` gets from the policy. */
export interface ModalPolicyParams {
  blockNetwork?: boolean;
  cpu?: number;
  memoryMiB?: number;
  memoryLimitMiB?: number;
}

export function modalPolicyParams(policy: ParsedPolicy): ModalPolicyParams {
  const limits = policy.limits ?? {};
  return {
    ...(policy.network?.mode === 'none' ? { blockNetwork: true } : {}),
    ...(limits.cpus !== undefined ? { cpu: limits.cpus } : {}),
    // Request and limit the same: the limit is what the policy means.
    ...(limits.memoryMiB !== undefined
      ? { memoryMiB: limits.memoryMiB, memoryLimitMiB: limits.memoryMiB }
      : {}),
  };
}

export function modalEnforcement(policy: ParsedPolicy): EnforcementReport {
  const net = policy.network?.mode;
  return enforcementReport(no('not offered by Modal sandboxes'), {
    isolation: yes('each sandbox is its own Modal sandbox (gVisor)'),
    network:
      net === 'none'
        ? yes('blockNetwork')
        : net === 'allowlist'
          ? no("Modal's outbound allowlists take CIDR ranges and domains without ports, not host:port pairs")
          : yes('open'),
    labels: yes('Modal sandbox tags'),
    nonRootUser: no('commands in a Modal sandbox run as root'),
    'limits.cpus': yes('Modal cpu request'),
    'limits.memoryMiB': yes('Modal memory request and limit'),
    'limits.diskMiB': no('Modal does not limit a sandbox’s disk'),
    checkpointIntegrity: no("Modal snapshots a sandbox's filesystem while its processes run"),
  });
}
