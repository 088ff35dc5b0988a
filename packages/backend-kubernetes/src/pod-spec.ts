/**
 * The hardened pod a sandbox runs in, from the policy: a fixed non-root uid, a read-only root,
 * every capability dropped, no privilege escalation, seccomp RuntimeDefault, no service-account
 * token, cpu/memory/ephemeral-storage limits, a size-limited memory emptyDir for /tmp, the
 * workspace on a volume, and a second container (the checkpoint helper) that mounts the
 * workspace and a store volume the sandbox container does not, and the policy's credentials
 * from a Secret mounted read-only. Egress is governed by a NetworkPolicy (network-policy.ts).
 */
import type { ParsedPolicy } from '@agentbox/core';
import type { KubernetesResolvedConfig } from './config.js';
import { CREDENTIAL_MODE, type CredentialMounts } from './credentials.js';
import { labelsFor, names, OWNER_ANNOTATION, WORKDIR_ANNOTATION } from './labels.js';

/** PID 1 of both containers: reaps orphans, exits on SIGTERM. */
export const REAPER = ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait; done"];
export const SANDBOX_CONTAINER = 'sandbox';
export const HELPER_CONTAINER = 'checkpoint';
/** Where the helper sees the workspace, and its store. */
export const HELPER_STATE = '/state';
export const HELPER_STORE = '/store';

/** What the pod is made of, from the policy (the rest is fixed hardening). */
export interface PodPlan {
  readOnlyRoot: boolean;
  tmpMiB: number | undefined;
  memoryMiB: number | undefined;
  cpus: number | undefined;
  diskMiB: number | undefined;
  /** `none`: a NetworkPolicy denies all egress; `allowlist`: it allows these `host:port` only; `open`: no policy. */
  network: 'none' | 'open' | 'allowlist';
  allow: string[];
  labels: Record<string, string>;
}

export function planFor(policy: ParsedPolicy): PodPlan {
  return {
    readOnlyRoot: policy.readOnlyRoot !== false,
    tmpMiB: policy.tmp === false ? undefined : (policy.tmp?.sizeMiB ?? 64),
    memoryMiB: policy.limits?.memoryMiB,
    cpus: policy.limits?.cpus,
    diskMiB: policy.limits?.diskMiB,
    network: policy.network?.mode ?? 'none',
    allow: policy.network?.mode === 'allowlist' ? policy.network.allow : [],
    labels: policy.labels ?? {},
  };
}

/** metadata + spec of the sandbox pod (a plain Pod, or a Sandbox's podTemplate). */
export function podFor(
  id: string,
  plan: PodPlan,
  config: KubernetesResolvedConfig,
  owner: string,
  plainPod: boolean,
  credentials?: CredentialMounts,
) {
  const uid = config.uid;
  const limits: Record<string, string> = {
    cpu: plan.cpus !== undefined ? `${Math.round(plan.cpus * 1000)}m` : '1',
    memory: `${plan.memoryMiB ?? 1024}Mi`,
    'ephemeral-storage': `${plan.diskMiB ?? 1024}Mi`,
  };
  const tmp = plan.tmpMiB !== undefined;
  return {
    metadata: {
      name: names.pod(id),
      labels: labelsFor(id, 'sandbox', plan.labels),
      annotations: { [OWNER_ANNOTATION]: owner, [WORKDIR_ANNOTATION]: config.workdir },
    },
    spec: {
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 2,
      ...(plainPod ? { activeDeadlineSeconds: config.deadlineSeconds } : {}),
      ...(config.runtimeClassName ? { runtimeClassName: config.runtimeClassName } : {}),
      securityContext: {
        runAsNonRoot: true,
        runAsUser: uid,
        runAsGroup: uid,
        fsGroup: uid,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: SANDBOX_CONTAINER,
          image: config.image,
          command: REAPER,
          workingDir: config.workdir,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: uid,
            runAsGroup: uid,
            privileged: false,
            readOnlyRootFilesystem: plan.readOnlyRoot,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
          resources: { limits, requests: limits },
          volumeMounts: [
            { name: 'workspace', mountPath: config.workdir },
            ...(tmp ? [{ name: 'tmp', mountPath: '/tmp' }] : []),
            ...(credentials?.mounts ?? []).map((m) => ({ name: 'credentials', ...m, readOnly: true })),
          ],
        },
        {
          // Root with only the file capabilities the checkpoint store needs; it never runs user code.
          name: HELPER_CONTAINER,
          image: config.helperImage ?? config.image,
          command: REAPER,
          securityContext: {
            runAsNonRoot: false,
            runAsUser: 0,
            runAsGroup: 0,
            privileged: false,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
          resources: { limits: { cpu: '500m', memory: '256Mi' }, requests: { cpu: '100m', memory: '64Mi' } },
          volumeMounts: [
            { name: 'workspace', mountPath: `${HELPER_STATE}/workspace` },
            { name: 'store', mountPath: HELPER_STORE },
          ],
        },
      ],
      volumes: [
        { name: 'workspace', emptyDir: plan.diskMiB !== undefined ? { sizeLimit: `${plan.diskMiB}Mi` } : {} },
        ...(tmp ? [{ name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: `${plan.tmpMiB}Mi` } }] : []),
        { name: 'store', emptyDir: {} },
        ...(credentials
          ? [
              {
                name: 'credentials',
                secret: {
                  secretName: names.credentials(id),
                  items: credentials.items,
                  defaultMode: CREDENTIAL_MODE,
                },
              },
            ]
          : []),
      ],
    },
  };
}
