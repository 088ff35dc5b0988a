/** What a singularity sandbox enforces, control by control, for a policy on this host. */
import { existsSync } from 'node:fs';
import type { ControlStatus, EnforcementReport, ParsedPolicy } from '@agentbox/core';
import { enforcementReport } from '@agentbox/core/backend';
import type { SingularityResolvedConfig } from './config.js';

/** Apptainer applies --memory/--cpus/--pids-limit through cgroups: as root, or rootless on cgroup v2. */
export function cgroupLimitsUsable(uid: number): boolean {
  return uid === 0 || existsSync('/sys/fs/cgroup/cgroup.controllers');
}

/** How the root is writable for this config and policy: an overlay directory, a tmpfs, or not at all. */
export function rootMode(
  config: SingularityResolvedConfig,
  policy: ParsedPolicy,
): 'overlay' | 'tmpfs' | 'read-only' {
  return policy.readOnlyRoot ? 'read-only' : config.writable;
}

export function singularityEnforcement(
  config: SingularityResolvedConfig,
  policy: ParsedPolicy,
  uid: number,
): EnforcementReport {
  const no = (detail: string): ControlStatus => ({ status: 'not-supported', detail });
  const on = (detail: string): ControlStatus => ({ status: 'enforced', detail });
  const notAsked = (detail: string): ControlStatus => ({ status: 'not-requested', detail });
  const cgroups = cgroupLimitsUsable(uid);
  const limit = (value: number | undefined, flag: string, what: string): ControlStatus =>
    value === undefined
      ? notAsked(`no ${what} limit requested`)
      : cgroups
        ? on(`${flag} ${value} (cgroup)`)
        : no(`${flag} needs root or cgroup v2 on this host (uid ${uid}, cgroup v1)`);
  const mode = rootMode(config, policy);
  const net = policy.network?.mode;
  return enforcementReport(no('not applicable'), {
    isolation: on(
      `an instance started with --containall: own mount, PID and IPC namespaces; of the host only the image, the workspace and the requested mounts are visible; commands get no host environment`,
    ),
    readOnlyRoot:
      mode === 'read-only'
        ? on(
            'no overlay and no --writable-tmpfs: the image is read-only; writable: the workspace, /tmp, writable mounts',
          )
        : no(
            mode === 'overlay'
              ? 'the root is writable through the overlay directory (kept in checkpoints)'
              : 'the root is writable through --writable-tmpfs',
          ),
    tmp: no('--containall gives a private /tmp, but apptainer sets neither its size nor noexec'),
    'limits.pids': limit(policy.limits?.pids, '--pids-limit', 'process'),
    'limits.memoryMiB': limit(policy.limits?.memoryMiB, '--memory', 'memory'),
    'limits.cpus': limit(policy.limits?.cpus, '--cpus', 'CPU'),
    'limits.diskMiB': no('apptainer has no quota for a bound workspace or an overlay directory'),
    dropCapabilities:
      uid === 0
        ? no('this process runs as root, so commands run as root in the instance with its capabilities')
        : on(`commands run as uid ${uid}, which holds no capabilities in the instance`),
    noNewPrivileges: no('not verified by the adapter'),
    nonRootUser:
      uid === 0 ? no('this process runs as root, so commands do too') : on(`commands run as uid ${uid}`),
    mounts: policy.mounts?.length ? on('--bind src:dst[:ro]') : notAsked('none requested'),
    credentials: policy.credentials?.length
      ? on('--bind src:dst:ro (read-only)')
      : notAsked('none requested'),
    network:
      net === 'none'
        ? on('--net --network none: own network namespace with only loopback')
        : net === 'allowlist'
          ? no('apptainer has no egress allowlist (only --network none, or the host network)')
          : notAsked(
              net === 'open' ? 'open: the host network' : 'not requested: commands share the host network',
            ),
    labels: policy.labels
      ? on("recorded in the sandbox directory's sandbox.json; the instance is named agentbox-<id>")
      : notAsked('no labels requested'),
    checkpointIntegrity: on(
      'the store is on the host, outside everything the instance shows; checkpoints and rollbacks run with every process of the instance stopped; manifests are validated and objects hash-checked before a restore',
    ),
  });
}
