/**
 * The hardened pod a sandbox runs in, from the policy: a fixed non-root uid, a read-only root,
 * every capability dropped, no privilege escalation, seccomp RuntimeDefault, no service-account
 * token, cpu/memory/ephemeral-storage limits, a size-limited memory emptyDir for /tmp, the
 * workspace on a volume, and a second container (the checkpoint helper) that mounts the
 * workspace and a store volume the sandbox container does not, and the policy's credentials
 * from a Secret mounted read-only, and the execute-only shell copies of an init container. Egress is governed by a NetworkPolicy (network-policy.ts).
 */
import type { ParsedPolicy } from '@agentbox/core';
import type { KubernetesResolvedConfig } from './config.js';
import { CREDENTIAL_MODE, type CredentialMounts } from './credentials.js';
import { labelsFor, names, OWNER_ANNOTATION, WORKDIR_ANNOTATION } from './labels.js';

/** PID 1 of both containers: reaps orphans, exits on SIGTERM. */
export const REAPER = ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait; done"];
export const SANDBOX_CONTAINER = 'sandbox';
export const HELPER_CONTAINER = 'checkpoint';
/**
 * The session shells' execute-only copies (see hidden-shell.ts): an init container, as a uid no
 * sandbox process has, copies the image's `sh` and `setsid` into a memory emptyDir with mode
 * 0111; the sandbox container mounts it read-only here.
 */
export const HIDDEN_DIR = '/dev/.agentbox';
const HIDDEN_OWNER = 65533;
const HIDDEN_INSTALL = `d=$1 s=
for p in /usr/bin /bin /usr/sbin /sbin; do [ -x "$p/setsid" ] && { s=$p/setsid; break; }; done
[ -n "$s" ] || exit 3
umask 077
cp /bin/sh "$d/.sh" && chmod 0111 "$d/.sh" && mv -f "$d/.sh" "$d/sh" || exit 4
# One program (BusyBox) for both: setsid is a link to the copy, whose pages then count once.
if a=$(stat -L -c %d:%i /bin/sh 2>/dev/null) && [ "$a" = "$(stat -L -c %d:%i "$s" 2>/dev/null)" ]; then
  ln -f "$d/sh" "$d/.setsid"
else cp "$s" "$d/.setsid" && chmod 0111 "$d/.setsid"; fi && mv -f "$d/.setsid" "$d/setsid" || exit 4`;
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
      initContainers: [
        {
          name: 'hide-shell',
          image: config.image,
          command: ['/bin/sh', '-c', HIDDEN_INSTALL, 'hide-shell', '/hidden'],
          securityContext: {
            runAsNonRoot: true,
            runAsUser: HIDDEN_OWNER,
            runAsGroup: HIDDEN_OWNER,
            privileged: false,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
          resources: { limits: { cpu: '100m', memory: '32Mi' }, requests: { cpu: '100m', memory: '32Mi' } },
          volumeMounts: [{ name: 'hidden-shell', mountPath: '/hidden' }],
        },
      ],
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
            { name: 'hidden-shell', mountPath: HIDDEN_DIR, readOnly: true },
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
        { name: 'hidden-shell', emptyDir: { medium: 'Memory', sizeLimit: '8Mi' } },
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
