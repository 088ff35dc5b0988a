/** Which policy controls Daytona enforces, read back from the sandbox where it can be. */
import type { ControlStatus, EnforcementReport, ParsedPolicy } from '@agentbox/core';
import { enforcementReport } from '@agentbox/core/backend';
import type { Sandbox } from '@daytonaio/sdk';

const no = (detail: string): ControlStatus => ({ status: 'not-supported', detail });
const yes = (detail: string): ControlStatus => ({ status: 'enforced', detail });

const RESOURCES_FROM_SNAPSHOT =
  'a Daytona sandbox started from a snapshot takes its cpu, memory and disk from the snapshot';

/** Resources to ask for at create (none: Daytona takes them from the snapshot). */
export function daytonaResources(_policy: ParsedPolicy): Record<string, number> {
  return {};
}

/** The report for `policy`; `sandbox` (when created) is read back for what it actually got. */
export function daytonaEnforcement(policy: ParsedPolicy, sandbox: Sandbox | undefined): EnforcementReport {
  const net = policy.network?.mode;
  const user = sandbox?.user;
  return enforcementReport(no('not offered by Daytona'), {
    isolation: yes('each sandbox is its own Daytona sandbox'),
    network:
      net === 'none'
        ? sandbox === undefined || sandbox.networkBlockAll
          ? yes('networkBlockAll')
          : no('Daytona did not report networkBlockAll on the sandbox')
        : net === 'allowlist'
          ? no("Daytona's networkAllowList takes CIDR ranges without ports, not host:port pairs")
          : yes('open'),
    labels: yes('Daytona labels'),
    nonRootUser:
      user === undefined || (user !== 'root' && user !== '0')
        ? yes(user ? `runs as ${user}` : 'runs as the snapshot user')
        : no(`the snapshot runs as ${user}`),
    'limits.cpus': no(RESOURCES_FROM_SNAPSHOT),
    'limits.memoryMiB': no(RESOURCES_FROM_SNAPSHOT),
    'limits.diskMiB': no(RESOURCES_FROM_SNAPSHOT),
    checkpointIntegrity: no('Daytona snapshots the sandbox while its processes run'),
  });
}
