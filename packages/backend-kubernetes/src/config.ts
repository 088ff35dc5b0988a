/** The kubernetes backend's settings (`spec.config`), validated field by field. */
import { z } from 'zod';

export const KubernetesConfigSchema = z.strictObject({
  /** Path of a kubeconfig. Default: client-node's own search (KUBECONFIG, ~/.kube/config, the in-cluster service account). */
  kubeconfig: z.string().min(1).optional(),
  /** A kubeconfig's text (YAML or JSON) instead of a file. */
  kubeconfigText: z.string().min(1).optional(),
  /** The kubeconfig context to use. Default: its current context. */
  context: z.string().min(1).optional(),
  /** Namespace of everything the backend creates. Default: the context's, else `default`. */
  namespace: z.string().min(1).optional(),
  /**
   * `pod`: a plain Pod (any cluster). `sandbox`: an agent-sandbox `Sandbox` resource
   * (agents.x-k8s.io/v1beta1, the CRD must be installed). `claim`: a `SandboxClaim` on the warm
   * pool `warmPool` (extensions.agents.x-k8s.io/v1beta1), for a pod that is already running.
   * Never one in place of another.
   */
  mode: z.enum(['pod', 'sandbox', 'claim']).default('pod'),
  /** The SandboxWarmPool claims are made on (mode `claim`; see `createKubernetesWarmPool`). */
  warmPool: z.string().min(1).optional(),
  /** The sandbox container's image: it needs /bin/sh, setsid, cat, kill, stat. */
  image: z.string().min(1).default('busybox:1.37'),
  /** The checkpoint helper's image (tar, sha256sum, find, stat...). Default: `image`. */
  helperImage: z.string().min(1).optional(),
  /** The fixed uid (and gid) commands run as; never 0. */
  uid: z.number().int().min(1).default(1000),
  /** Working directory and workspace volume. */
  workdir: z.string().startsWith('/', 'must be an absolute path').default('/workspace'),
  /** A RuntimeClass for the pod (gVisor, Kata...); it must exist on the cluster. */
  runtimeClassName: z.string().min(1).optional(),
  /**
   * The dead man's switch: the cluster ends the sandbox this long after it started even if its
   * owner crashed (`activeDeadlineSeconds` on a plain pod, `shutdownTime` on a Sandbox). Default one hour.
   */
  deadlineSeconds: z.number().int().min(1).default(3600),
  /** How long open waits for the pod to run. Default two minutes. */
  startTimeoutMs: z.number().int().min(1000).default(120_000),
  /** Extra environment for every command (the caller's `env` on exec overrides it). */
  env: z.record(z.string(), z.string()).default({}),
  /** Who created it (annotation); default user@host. */
  owner: z.string().min(1).optional(),
  /** Leave the sandbox on close, to re-attach later by id (the dead man's switch still ends it). */
  keep: z.boolean().default(false),
  /** `false` sends every command down one exec each (no long-lived session shells). */
  fastPath: z.boolean().default(true),
});

/** What a user writes as `config` for the kubernetes backend: every field has a default. */
export type KubernetesConfig = z.input<typeof KubernetesConfigSchema>;
/** The config as the backend sees it: parsed, every default filled in. */
export type KubernetesResolvedConfig = z.output<typeof KubernetesConfigSchema>;
