/** The enforcement report, read back from the pod and NetworkPolicy the API server holds. */
import type { ControlStatus, EnforcementReport, ParsedPolicy } from '@agentbox/core';
import { enforcementReport } from '@agentbox/core/backend';
import { ALLOWLIST_ANNOTATION, allowlistMismatch } from './network-policy.js';
import { SANDBOX_CONTAINER } from './pod-spec.js';

const no = (detail: string): ControlStatus => ({ status: 'not-supported', detail });
const yes = (detail: string): ControlStatus => ({ status: 'enforced', detail });

// biome-ignore lint/suspicious/noExplicitAny: the pod as the API server answered it (V1Pod), read defensively
type Pod = any;
// biome-ignore lint/suspicious/noExplicitAny: the NetworkPolicy as read back (V1NetworkPolicy), read defensively
type Policy = any;

export function readEnforcement(
  policy: ParsedPolicy,
  pod: Pod,
  egress: Policy | undefined,
  /** Other NetworkPolicies that select the pod and allow some egress. */
  wider: readonly string[] = [],
): EnforcementReport {
  const spec = pod?.spec ?? {};
  const c = (spec.containers ?? []).find((x: { name: string }) => x.name === SANDBOX_CONTAINER) ?? {};
  const sc = { ...spec.securityContext, ...c.securityContext };
  const limits = c.resources?.limits ?? {};
  const mounts: { name: string; mountPath: string }[] = c.volumeMounts ?? [];
  const tmpMount = mounts.find((m) => m.mountPath === '/tmp');
  const tmpVolume = (spec.volumes ?? []).find((v: { name: string }) => v.name === tmpMount?.name);
  const egressDenied =
    egress !== undefined &&
    (egress.spec?.policyTypes ?? []).includes('Egress') &&
    (egress.spec?.egress ?? []).length === 0;
  const net = policy.network?.mode ?? 'none';
  const tmp = policy.tmp;
  const volumes: { name: string; secret?: { secretName?: string } }[] = spec.volumes ?? [];
  // Each credential: a read-only mount at its target of a secret volume.
  const credentialMounts = (policy.credentials ?? []).map((cred) => {
    const m = mounts.find((x) => x.mountPath === cred.target) as
      | { name: string; readOnly?: boolean }
      | undefined;
    const secret = volumes.find((v) => v.name === m?.name)?.secret?.secretName;
    return { target: cred.target, ok: m?.readOnly === true && secret !== undefined, secret };
  });
  return enforcementReport(no('not offered by the kubernetes backend'), {
    isolation: yes(
      spec.runtimeClassName
        ? `a pod under RuntimeClass ${spec.runtimeClassName}`
        : 'a pod (containers under the cluster default runtime)',
    ),
    readOnlyRoot:
      sc.readOnlyRootFilesystem === true
        ? yes('readOnlyRootFilesystem')
        : no('the root filesystem is writable'),
    tmp:
      tmp === false
        ? yes('no /tmp volume')
        : tmpVolume?.emptyDir?.medium === 'Memory' && tmpVolume.emptyDir.sizeLimit
          ? tmp && (tmp.noexec || tmp.nosuid)
            ? no(
                `/tmp is a ${tmpVolume.emptyDir.sizeLimit} memory emptyDir; Kubernetes cannot mount it noexec or nosuid`,
              )
            : yes(`a ${tmpVolume.emptyDir.sizeLimit} memory emptyDir`)
          : no('no size-limited /tmp volume'),
    'limits.memoryMiB': limits.memory ? yes(`limits.memory ${limits.memory}`) : no('no memory limit'),
    'limits.cpus': limits.cpu ? yes(`limits.cpu ${limits.cpu}`) : no('no cpu limit'),
    'limits.diskMiB': limits['ephemeral-storage']
      ? yes(
          `limits.ephemeral-storage ${limits['ephemeral-storage']} and a workspace sizeLimit (the kubelet evicts past it)`,
        )
      : no('no ephemeral-storage limit'),
    'limits.pids': no('a pod spec has no pids limit (it is a kubelet setting)'),
    dropCapabilities:
      (sc.capabilities?.drop ?? []).includes('ALL') && (sc.capabilities?.add ?? []).length === 0
        ? yes('capabilities drop ALL')
        : no('capabilities are not all dropped'),
    noNewPrivileges:
      sc.allowPrivilegeEscalation === false
        ? yes('allowPrivilegeEscalation false')
        : no('privilege escalation allowed'),
    nonRootUser:
      sc.runAsNonRoot === true && Number(sc.runAsUser) > 0
        ? yes(`runAsNonRoot, uid ${sc.runAsUser}`)
        : no('the pod may run as root'),
    network:
      net === 'open'
        ? yes('no NetworkPolicy')
        : wider.length > 0
          ? no(`other NetworkPolicies select the pod and allow egress: ${wider.join(', ')}`)
          : net === 'none'
            ? egressDenied
              ? yes(
                  'a NetworkPolicy denies all egress (enforced only where the cluster network plugin enforces NetworkPolicy)',
                )
              : no('no NetworkPolicy denying egress was read back')
            : allowlistReport(policy.network?.mode === 'allowlist' ? policy.network.allow : [], egress),
    credentials:
      credentialMounts.length === 0
        ? no('no credentials asked for')
        : credentialMounts.every((c) => c.ok)
          ? yes(credentialMounts.map((c) => `${c.target} (Secret ${c.secret}, read-only)`).join(', '))
          : no(
              `not mounted read-only from a Secret: ${credentialMounts
                .filter((c) => !c.ok)
                .map((c) => c.target)
                .join(', ')}`,
            ),
    labels: yes('Kubernetes labels on every object'),
    checkpointIntegrity: yes(
      "the store is in a helper container's volume the sandbox container does not mount; the sandbox user's processes are stopped while it works; manifests are authenticated with a key kept in a Secret",
    ),
  });
}

function allowlistReport(allow: readonly string[], egress: Policy | undefined): ControlStatus {
  const mismatch = allowlistMismatch(allow, egress);
  if (mismatch) return no(mismatch);
  const resolved: Record<string, string[]> = JSON.parse(egress.metadata.annotations[ALLOWLIST_ANNOTATION]);
  const list = allow.map((entry) => `${entry} (${resolved[entry]!.join(' ')})`).join(', ');
  return yes(
    `a NetworkPolicy allows TCP egress only to ${list}, and DNS to kube-dns when a name is listed; names were resolved by the library at open (enforced only where the cluster network plugin enforces NetworkPolicy)`,
  );
}
