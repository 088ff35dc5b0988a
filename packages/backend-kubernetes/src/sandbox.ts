/**
 * KubernetesSandbox: one hardened pod per sandbox (a plain Pod, or the pod of an agent-sandbox
 * Sandbox). Commands are pods/exec streams (exec.ts) behind core's SessionPool; files go through
 * core's file scripts over exec; checkpoints are core's ExecCheckpointStore run in the pod's
 * helper container, whose store volume the sandbox container does not mount.
 */
import { randomBytes } from 'node:crypto';
import {
  AbortedError,
  type EnforcementReport,
  InvalidArgumentError,
  OutputLimitError,
  PolicyNotEnforceableError,
  SandboxUnavailableError,
  UnsupportedError,
} from '@agentbox/core';
import {
  assertEnforced,
  BaseSandbox,
  type CheckpointStore,
  checkFileScript,
  ExecCheckpointStore,
  frozenCheckpointStore,
  type OpenContext,
  type RawProcess,
  READ_FILE_SCRIPT,
  type RunnerPrograms,
  SessionPool,
  type StartRequest,
  WRITE_FILE_SCRIPT,
} from '@agentbox/core/backend';
import type { V1Pod } from '@kubernetes/client-node';
import {
  CLAIM_GROUP,
  CLAIM_SANDBOX_ANNOTATION,
  type Cluster,
  connect,
  kubeFailure,
  SANDBOX_GROUP,
  statusOf,
} from './client.js';
import type { KubernetesResolvedConfig } from './config.js';
import { readCredentials } from './credentials.js';
import { readEnforcement } from './enforcement.js';
import { type ExecTarget, killGroup, newNonce, runExec, startWrapped, type WrappedProcess } from './exec.js';
import {
  defaultOwner,
  ID_LABEL,
  labelsFor,
  MANAGED_LABEL,
  names,
  OWNER_ANNOTATION,
  WORKDIR_ANNOTATION,
} from './labels.js';
import { egressPolicy, resolveAllowlist } from './network-policy.js';
import {
  HELPER_CONTAINER,
  HELPER_STATE,
  HELPER_STORE,
  HIDDEN_DIR,
  planFor,
  podFor,
  SANDBOX_CONTAINER,
} from './pod-spec.js';

export const KIND = 'kubernetes';
/** Prints the path of a readable `env` (in BusyBox sh, `command -v` names applets bare). */
const FIND_ENV = 'for p in /usr/bin /bin; do [ -x "$p/env" ] && { echo "$p/env"; exit 0; }; done; exit 5';
const KEY_FIELD = 'manifest-key';

interface Parts {
  id: string;
  /** The pod's name: `agentbox-<id>`, or in mode `claim` the name of the pool's Sandbox it got. */
  podName: string;
  cluster: Cluster;
  config: KubernetesResolvedConfig;
  workdir: string;
  manifestKey: Uint8Array;
}

export class KubernetesSandbox extends BaseSandbox {
  protected readonly checkpoints: CheckpointStore;
  /** The fast exec path (core's SessionPool): small commands go down a long-lived exec stream. */
  readonly sessions: SessionPool;
  /** The pod's name. */
  readonly podName: string;
  readonly #parts: Parts;
  readonly #target: ExecTarget;
  readonly #nonce = newNonce();
  #hidden: Promise<RunnerPrograms | undefined> | undefined;
  #programs: RunnerPrograms | undefined;

  /** @internal Built by open; its parts carry client-node types. */
  constructor(parts: Parts, enforcement: EnforcementReport) {
    super({
      kind: KIND,
      id: parts.id,
      workdir: parts.workdir,
      capabilities: {
        isolation: 'container',
        checkpoints: true,
        spawn: true,
        stdin: true,
        kill: true,
        nonRootUser: true,
        networkPolicy: true,
        reattach: true,
        unsupported: {},
      },
      enforcement,
      baseEnv: parts.config.env,
    });
    this.#parts = parts;
    this.podName = parts.podName;
    const context = { backend: KIND, sandboxId: parts.id };
    this.#target = { cluster: parts.cluster, pod: this.podName, container: SANDBOX_CONTAINER, context };
    const helper: ExecTarget = { ...this.#target, container: HELPER_CONTAINER };
    const store = new ExecCheckpointStore({
      exec: (argv, { stdin, signal }) => runExec(helper, argv, { ...(stdin ? { stdin } : {}), signal }),
      root: HELPER_STATE,
      storeDir: HELPER_STORE,
      preserveOwnership: true,
      context,
      manifestKey: parts.manifestKey,
      // Every process of the sandbox is stopped around each checkpoint (below).
      frozen: true,
    });
    // No process of the sandbox user runs while the helper reads or rewrites the tree. A fork
    // cannot slip past `kill -1`: the kernel walks the process list under the lock a fork needs
    // to add its child, and a fork whose parent has the signal pending by then is restarted.
    this.checkpoints = frozenCheckpointStore(store, async (fn) => {
      const signalAll = (s: string) =>
        runExec(this.#target, ['/bin/sh', '-c', `kill -${s} -1 2>/dev/null; exit 0`]);
      await signalAll('STOP');
      try {
        return await fn();
      } finally {
        await signalAll('CONT');
      }
    });
    // The sessions' shells: a kill on a session command spares its runner and reaches whoever holds its pipes.
    const shells = new Set<WrappedProcess>();
    this.sessions = new SessionPool({
      startProcess: (req, signal) => this.#startPlain(req, signal),
      openShell: async () => {
        const programs = await this.#hiddenShell();
        // The pool turns the fast path off for good on UnsupportedError.
        if (!programs)
          throw new UnsupportedError(
            `the execute-only shell copies in ${HIDDEN_DIR} do not run in this pod, so session shells would be open to the sandbox user through /proc: every command takes the plain path`,
            context,
          );
        const shell = await startWrapped(
          this.#target,
          this.#nonce,
          { argv: [programs.sh], cwd: '/', env: {} },
          undefined,
          programs,
        );
        shells.add(shell);
        void shell.exit.finally(() => shells.delete(shell)).catch(() => {});
        return shell;
      },
      runnerPrograms: () => this.#programs,
      signalGroup: (pgid, signal) =>
        killGroup(
          this.#target,
          signal,
          pgid,
          [...shells].flatMap((shell) => shell.pipeSet ?? []),
        ),
      context,
      enabled: parts.config.fastPath,
    });
  }

  /** The plain path: one exec per command, its wrapper from the hidden copies where they run. */
  async #startPlain(req: StartRequest, signal: AbortSignal | undefined): Promise<RawProcess> {
    return startWrapped(this.#target, this.#nonce, req, signal, await this.#hiddenShell());
  }

  /**
   * The init container's execute-only copies of `sh` and `setsid`, once one has run as the
   * sandbox user, with a readable `env` for commands; undefined where they do not run (a pod
   * made before them, or a runtime that refuses to execute what its caller cannot read).
   */
  #hiddenShell(): Promise<RunnerPrograms | undefined> {
    this.#hidden ??= runExec(this.#target, [`${HIDDEN_DIR}/sh`, '-c', FIND_ENV])
      .then((r) => {
        const env = r.stdout.toString('utf8').trim();
        if (r.exitCode !== 0 || !env.startsWith('/')) return undefined;
        this.#programs = { sh: `${HIDDEN_DIR}/sh`, setsid: `${HIDDEN_DIR}/setsid`, env };
        return this.#programs;
      })
      .catch(() => undefined);
    return this.#hidden;
  }

  protected startProcess(req: StartRequest, signal: AbortSignal | undefined): Promise<RawProcess> {
    return this.sessions.startProcess(req, signal);
  }

  protected async readFileAt(
    path: string,
    maxBytes: number,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    const context = { ...this.#target.context, operation: 'readFile' };
    const r = await runExec(
      this.#target,
      ['/bin/sh', '-c', READ_FILE_SCRIPT, 'agentbox-read', path, String(maxBytes)],
      {
        signal,
      },
    );
    if (r.exitCode === 6)
      throw new OutputLimitError(`${path} is larger than ${maxBytes} bytes`, maxBytes, undefined, {
        ...context,
        subject: path,
      });
    checkFileScript({ code: r.exitCode, stdout: r.stdout, stderr: r.stderr }, path, context);
    return new Uint8Array(r.stdout);
  }

  protected async writeFileAt(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const context = { ...this.#target.context, operation: 'writeFile' };
    const r = await runExec(
      this.#target,
      [
        '/bin/sh',
        '-c',
        WRITE_FILE_SCRIPT,
        'agentbox-write',
        path,
        mode === undefined ? '' : mode.toString(8),
      ],
      { stdin: data, signal },
    );
    checkFileScript({ code: r.exitCode, stdout: r.stdout, stderr: r.stderr }, path, context);
  }

  protected async closeResources(): Promise<void> {
    await this.sessions.close();
    if (this.#parts.config.keep) return;
    await removeSandbox(this.#parts.cluster, this.#parts.config.mode, this.id, {
      backend: KIND,
      sandboxId: this.id,
    });
  }
}

/** Delete every object of sandbox `id` (what is already gone is fine). */
export async function removeSandbox(
  cluster: Cluster,
  mode: 'pod' | 'sandbox' | 'claim',
  id: string,
  context: { backend: string; sandboxId?: string },
): Promise<void> {
  const namespace = cluster.namespace;
  const gone = (error: unknown) => {
    if (statusOf(error) !== 404) throw kubeFailure(error, { ...context, operation: 'close' });
  };
  // A claim's Sandbox and pod are named by the pool: the claim says which (deleting it deletes them).
  const claimed = mode === 'claim' ? await claimedPod(cluster, id, context) : undefined;
  if (mode === 'claim')
    await cluster.custom
      .deleteNamespacedCustomObject({ ...CLAIM_GROUP, namespace, name: names.claim(id) })
      .catch(gone);
  const podName = mode === 'claim' ? claimed : names.pod(id);
  if (mode !== 'pod' && podName)
    await cluster.custom
      .deleteNamespacedCustomObject({ ...SANDBOX_GROUP, namespace, name: podName })
      .catch(gone);
  if (podName)
    await cluster.core.deleteNamespacedPod({ namespace, name: podName, gracePeriodSeconds: 0 }).catch(gone);
  await cluster.networking.deleteNamespacedNetworkPolicy({ namespace, name: names.egress(id) }).catch(gone);
  await cluster.core.deleteNamespacedSecret({ namespace, name: names.key(id) }).catch(gone);
  await cluster.core.deleteNamespacedSecret({ namespace, name: names.credentials(id) }).catch(gone);
}

/** The pod a claim was given (undefined while it has none, or without the claim). */
async function claimedPod(
  cluster: Cluster,
  id: string,
  context: { backend: string; sandboxId?: string },
): Promise<string | undefined> {
  const claim = await cluster.custom
    .getNamespacedCustomObject({ ...CLAIM_GROUP, namespace: cluster.namespace, name: names.claim(id) })
    .catch((error: unknown) => {
      if (statusOf(error) === 404) return undefined;
      throw kubeFailure(error, { ...context, operation: 'open' });
    });
  const c = claim as
    | { metadata?: { annotations?: Record<string, string> }; status?: { sandbox?: { name?: string } } }
    | undefined;
  return c?.metadata?.annotations?.[CLAIM_SANDBOX_ANNOTATION] ?? c?.status?.sandbox?.name ?? undefined;
}

/** Wait until the claim has been given a pod; its name. */
async function untilClaimed(cluster: Cluster, ctx: OpenContext<KubernetesResolvedConfig>): Promise<string> {
  const context = { backend: KIND, sandboxId: ctx.id, operation: 'open' };
  const deadline = Date.now() + ctx.config.startTimeoutMs;
  for (let wait = 20; ; wait = Math.min(wait * 2, 500)) {
    if (ctx.signal?.aborted) throw new AbortedError('open was aborted', context);
    const pod = await claimedPod(cluster, ctx.id, context);
    if (pod) return pod;
    if (Date.now() > deadline)
      throw new SandboxUnavailableError(
        `the SandboxClaim ${names.claim(ctx.id)} on warm pool ${ctx.config.warmPool} got no sandbox in ${ctx.config.startTimeoutMs} ms`,
        context,
      );
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** Wait until the pod runs and is Ready; a pod that cannot start is a typed error. */
async function untilReady(
  cluster: Cluster,
  name: string,
  timeoutMs: number,
  ctx: OpenContext<KubernetesResolvedConfig>,
) {
  const context = { backend: KIND, sandboxId: ctx.id, operation: 'open' };
  const deadline = Date.now() + timeoutMs;
  let wait = 50;
  for (;;) {
    if (ctx.signal?.aborted) throw new AbortedError('open was aborted', context);
    const pod = await cluster.core
      .readNamespacedPod({ namespace: cluster.namespace, name })
      .catch((error) => {
        if (statusOf(error) === 404) return undefined;
        throw kubeFailure(error, context);
      });
    const status = pod?.status;
    if (
      status?.phase === 'Running' &&
      status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') &&
      pod?.metadata?.labels?.[ID_LABEL] === ctx.id.toLowerCase()
    )
      return pod;
    if (status?.phase === 'Failed' || status?.phase === 'Succeeded')
      throw new SandboxUnavailableError(
        `the pod ${name} ended (${status.reason ?? status.phase}: ${status.message ?? ''})`,
        context,
      );
    const waiting = status?.containerStatuses?.find(
      (c) => c.state?.waiting?.reason && /Error|BackOff|Invalid/.test(c.state.waiting.reason),
    );
    if (waiting)
      throw new SandboxUnavailableError(
        `container ${waiting.name} cannot start: ${waiting.state!.waiting!.reason}: ${waiting.state!.waiting!.message ?? ''}`,
        context,
      );
    if (Date.now() > deadline)
      throw new SandboxUnavailableError(`the pod ${name} did not become ready in ${timeoutMs} ms`, context);
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 1000);
  }
}

async function readBack(
  cluster: Cluster,
  id: string,
  pod: V1Pod,
  ctx: OpenContext<KubernetesResolvedConfig>,
) {
  const context = { backend: KIND, sandboxId: id, operation: 'open' };
  const policies = await cluster.networking
    .listNamespacedNetworkPolicy({ namespace: cluster.namespace })
    .catch((error) => {
      throw kubeFailure(error, context);
    });
  const egress = policies.items.find((np) => np.metadata?.name === names.egress(id));
  // NetworkPolicies add up: any other one selecting the pod that allows egress widens it.
  const labels = pod.metadata?.labels ?? {};
  const wider = policies.items
    .filter((np) => np !== egress)
    .filter((np) => {
      const selector = np.spec?.podSelector;
      const selects =
        (selector?.matchExpressions?.length ?? 0) > 0 ||
        Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
      return selects && (np.spec?.policyTypes ?? []).includes('Egress') && (np.spec?.egress?.length ?? 0) > 0;
    })
    .map((np) => np.metadata?.name ?? '?');
  const report = readEnforcement(ctx.policy, pod, egress, wider);
  if (ctx.strict) assertEnforced(ctx.policy, report, { backend: KIND, sandboxId: id });
  return report;
}

export async function openKubernetesSandbox(
  ctx: OpenContext<KubernetesResolvedConfig>,
): Promise<KubernetesSandbox> {
  const context = { backend: KIND, sandboxId: ctx.id, operation: 'open' };
  const cluster = connect(ctx.config, context);
  const namespace = cluster.namespace;
  const id = ctx.id;
  const claim = ctx.config.mode === 'claim';
  if (claim && !ctx.config.warmPool)
    throw new InvalidArgumentError('mode claim needs the SandboxWarmPool to claim from (config.warmPool)', {
      ...context,
      issues: ['config.warmPool: required with mode claim'],
    });
  if (ctx.idGiven) {
    const podName = claim ? await claimedPod(cluster, id, context) : names.pod(id);
    const existing =
      podName &&
      (await cluster.core.readNamespacedPod({ namespace, name: podName }).catch((error) => {
        if (statusOf(error) === 404) return undefined;
        throw kubeFailure(error, context);
      }));
    if (existing) return reattach(ctx, cluster, existing);
  }
  const plan = planFor(ctx.policy);
  // A claimed pod was made from its pool's template: nothing can be mounted into it per sandbox.
  if (claim && ctx.strict && (ctx.policy.credentials?.length ?? 0) > 0)
    throw new PolicyNotEnforceableError(
      "a claimed pod was made from its warm pool's template before the claim: credentials cannot be mounted into it (use mode pod or sandbox)",
      { credentials: 'not mountable into a claimed pod' },
      context,
    );
  const credentials = claim ? undefined : await readCredentials(ctx.policy, context);
  const allowed = plan.network === 'allowlist' ? await resolveAllowlist(plan.allow, context) : undefined;
  const owner = ctx.config.owner ?? defaultOwner();
  const key = randomBytes(32);
  const cleanup = () => removeSandbox(cluster, ctx.config.mode, id, context).catch(() => {});
  const checkAbort = () => {
    if (ctx.signal?.aborted) throw new AbortedError('open was aborted', context);
  };
  checkAbort();
  try {
    await cluster.core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: names.key(id), labels: labelsFor(id, 'checkpoint-key', plan.labels) },
        type: 'Opaque',
        data: { [KEY_FIELD]: key.toString('base64') },
      },
    });
    if (credentials)
      await cluster.core.createNamespacedSecret({
        namespace,
        body: {
          metadata: { name: names.credentials(id), labels: labelsFor(id, 'credentials', plan.labels) },
          type: 'Opaque',
          data: credentials.data,
        },
      });
    // The policy exists before the pod, so the pod never runs unselected.
    if (plan.network !== 'open')
      await cluster.networking.createNamespacedNetworkPolicy({
        namespace,
        body: egressPolicy(id, plan.labels, allowed),
      });
    const pod = podFor(id, plan, ctx.config, owner, ctx.config.mode === 'pod', credentials);
    const shutdownTime = new Date(Date.now() + ctx.config.deadlineSeconds * 1000)
      .toISOString()
      .replace(/\.\d+Z$/, 'Z');
    if (ctx.config.mode === 'pod') {
      await cluster.core.createNamespacedPod({ namespace, body: pod });
    } else if (ctx.config.mode === 'sandbox') {
      await cluster.custom.createNamespacedCustomObject({
        ...SANDBOX_GROUP,
        namespace,
        body: {
          apiVersion: `${SANDBOX_GROUP.group}/${SANDBOX_GROUP.version}`,
          kind: 'Sandbox',
          metadata: pod.metadata,
          spec: { podTemplate: pod, shutdownTime, shutdownPolicy: 'Delete' },
        },
      });
    } else {
      // The pool's pod gets this sandbox's labels (its NetworkPolicy selects it by them) and owner;
      // its workdir is the pool's.
      const podMetadata = {
        labels: pod.metadata.labels,
        annotations: { [OWNER_ANNOTATION]: pod.metadata.annotations[OWNER_ANNOTATION] },
      };
      await cluster.custom.createNamespacedCustomObject({
        ...CLAIM_GROUP,
        namespace,
        body: {
          apiVersion: `${CLAIM_GROUP.group}/${CLAIM_GROUP.version}`,
          kind: 'SandboxClaim',
          metadata: { name: names.claim(id), ...podMetadata },
          spec: {
            warmPoolRef: { name: ctx.config.warmPool },
            lifecycle: { shutdownTime, shutdownPolicy: 'Delete' },
            additionalPodMetadata: podMetadata,
          },
        },
      });
    }
    const podName = claim ? await untilClaimed(cluster, ctx) : names.pod(id);
    const running = await untilReady(cluster, podName, ctx.config.startTimeoutMs, ctx);
    const workdir = running.metadata?.annotations?.[WORKDIR_ANNOTATION] ?? ctx.config.workdir;
    const enforcement = await readBack(cluster, id, running, ctx);
    const sandbox = new KubernetesSandbox(
      { id, podName, cluster, config: { ...ctx.config, workdir }, workdir, manifestKey: key },
      enforcement,
    );
    await sandbox.sessions.warm();
    return sandbox;
  } catch (error) {
    await cleanup();
    throw kubeFailure(error, context);
  }
}

async function reattach(
  ctx: OpenContext<KubernetesResolvedConfig>,
  cluster: Cluster,
  pod: V1Pod,
): Promise<KubernetesSandbox> {
  const context = { backend: KIND, sandboxId: ctx.id, operation: 'open' };
  const labels = pod.metadata?.labels ?? {};
  if (labels[MANAGED_LABEL] !== 'true' || labels[ID_LABEL] !== ctx.id.toLowerCase())
    throw new InvalidArgumentError(
      `a pod named ${pod.metadata?.name} exists but agentbox did not create it for sandbox ${ctx.id}`,
      {
        ...context,
        issues: ['id: in use by a pod agentbox did not create'],
      },
    );
  const podName = pod.metadata?.name ?? names.pod(ctx.id);
  const running = await untilReady(cluster, podName, ctx.config.startTimeoutMs, ctx);
  const secret = await cluster.core
    .readNamespacedSecret({ namespace: cluster.namespace, name: names.key(ctx.id) })
    .catch((error) => {
      throw kubeFailure(error, context);
    });
  const key = secret.data?.[KEY_FIELD];
  if (!key) throw new SandboxUnavailableError(`the checkpoint key of sandbox ${ctx.id} is missing`, context);
  const enforcement = await readBack(cluster, ctx.id, running, ctx);
  const workdir = pod.metadata?.annotations?.[WORKDIR_ANNOTATION] ?? ctx.config.workdir;
  const sandbox = new KubernetesSandbox(
    {
      id: ctx.id,
      podName,
      cluster,
      config: { ...ctx.config, workdir },
      workdir,
      manifestKey: new Uint8Array(Buffer.from(key, 'base64')),
    },
    enforcement,
  );
  await sandbox.sessions.warm();
  return sandbox;
}
