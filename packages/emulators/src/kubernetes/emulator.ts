/**
 * A Kubernetes API server stand-in that the unmodified `@kubernetes/client-node` talks to
 * through a kubeconfig (`http://` server, `ws://` for exec): namespaces, pods, secrets,
 * networkpolicies, runtimeclasses and agent-sandbox `Sandbox` resources (create, get, list
 * with label selectors, merge/JSON patch, delete with owner-reference garbage collection), pod
 * and Sandbox status written the way a kubelet and the agent-sandbox controller would, and
 * pods/exec over WebSocket (exec.ts). Each pod is real Docker containers (pods.ts). Unknown
 * paths answer 404 with a Status body and are logged. No watch, no scheduling, no admission.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import { WebSocketServer } from 'ws';
import { readBody } from '../http.js';
import { closeAndRemoveOwned, InFlight, listenLocal } from '../server.js';
import { bridgeExec, PROTOCOLS, parseExecQuery } from './exec.js';
import { endedStatus, type PodEgress, PodRuntime, runningStatus, type SecretData } from './pods.js';
import {
  NAMESPACES,
  NETWORK_POLICIES,
  PODS,
  prefixOf,
  RUNTIME_CLASSES,
  SANDBOX_CLAIMS,
  SANDBOX_TEMPLATES,
  SANDBOX_WARM_POOLS,
  SANDBOXES,
  SECRETS,
} from './resources.js';
import {
  jsonPatch,
  KubeFailure,
  type KubeObject,
  matches,
  mergePatch,
  ObjectStore,
  parseSelector,
  type ResourceType,
  statusBody,
} from './store.js';

export interface KubernetesEmulatorOptions {
  port?: number;
  host?: string;
  /** Serve the agent-sandbox `Sandbox` resource (its CRD "installed"). Default true. */
  agentSandbox?: boolean;
  /** The bearer token clients must send; random when absent. */
  token?: string;
  /** RuntimeClasses that exist (name = handler); the stand-in records them, it runs every pod under Docker's default. */
  runtimeClasses?: string[];
  /**
   * Docker client; default the local daemon.
   * @internal dockerode's type, kept out of the published types.
   */
  docker?: Docker;
  log?: (line: string) => void;
}

export interface KubernetesEmulator {
  /** The API server URL (http://127.0.0.1:PORT). */
  url: string;
  /** The bearer token the kubeconfig carries. */
  token: string;
  /** A kubeconfig (JSON, which is YAML) whose current context reaches this server, namespace `default`. */
  kubeconfig: string;
  /** This emulator's id: INSTANCE_LABEL on every container and volume it makes. */
  instance: string;
  /** Stop serving; remove every container and volume of its pods. */
  close(): Promise<void>;
}

type SecretVolumeSource = { secretName: string; items?: { key: string }[] };

const TYPES = [
  PODS,
  SECRETS,
  NAMESPACES,
  NETWORK_POLICIES,
  RUNTIME_CLASSES,
  SANDBOXES,
  SANDBOX_TEMPLATES,
  SANDBOX_WARM_POOLS,
  SANDBOX_CLAIMS,
];
/** agent-sandbox's types: served unless `agentSandbox: false`. */
const AGENT_SANDBOX_TYPES = [SANDBOXES, SANDBOX_TEMPLATES, SANDBOX_WARM_POOLS, SANDBOX_CLAIMS];
/** On a warm pool's Sandboxes (the stand-in's own label), naming the pool. */
const POOL_LABEL = 'agents.x-k8s.io/warm-pool';
/** On a claim, naming the Sandbox it holds. */
const CLAIM_SANDBOX_ANNOTATION = 'agents.x-k8s.io/sandbox-name';

export async function startKubernetesEmulator(
  options: KubernetesEmulatorOptions = {},
): Promise<KubernetesEmulator> {
  const docker = options.docker ?? new Docker();
  const instance = randomUUID();
  const token = options.token ?? randomUUID();
  const authorized = (req: IncomingMessage) => req.headers.authorization === `Bearer ${token}`;
  const log = options.log ?? ((line: string) => process.stderr.write(`[kubernetes-emulator] ${line}\n`));
  const agentSandbox = options.agentSandbox ?? true;
  const store = new ObjectStore();
  const runtime = new PodRuntime(docker, instance);
  const timers = new Map<string, NodeJS.Timeout>();
  // Requests being handled and pods being started or deleted: close waits for all of them.
  const work = new InFlight();
  const track = <T>(p: Promise<T>) => work.track(p);
  for (const ns of ['default', 'kube-system'])
    store.create(NAMESPACES, undefined, { metadata: { name: ns } });
  for (const rc of options.runtimeClasses ?? [])
    store.create(RUNTIME_CLASSES, undefined, { metadata: { name: rc }, handler: rc });

  const served = TYPES.filter((t) => agentSandbox || !AGENT_SANDBOX_TYPES.includes(t));

  const setTimer = (uid: string, at: number, fn: () => void) => {
    clearTimeout(timers.get(uid));
    const t = setTimeout(
      () => {
        timers.delete(uid);
        fn();
      },
      Math.max(0, at - Date.now()),
    );
    t.unref();
    timers.set(uid, t);
  };

  /** Replace an object's status, as a controller's status write (no validation, no generation bump). */
  const writeStatus = (
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    uid: string,
    status: unknown,
  ) => {
    const current = store.find(type, namespace, name);
    if (!current || current.metadata.uid !== uid) return undefined;
    return store.update(type, current, { ...current, status }, false);
  };

  /**
   * What the NetworkPolicies selecting the pod (by `matchLabels`) let it reach when it starts:
   * everything when none governs egress; else the union of their rules, where a rule without
   * `to` opens every address, an `ipBlock` adds its block, and pod or namespace peers add
   * nothing (the stand-in has no other pods to reach).
   */
  const egressOf = (pod: KubeObject): PodEgress => {
    const blocks = new Set<string>();
    let governed = false;
    for (const np of store.list(NETWORK_POLICIES, pod.metadata.namespace)) {
      const spec = np.spec as {
        podSelector: { matchLabels?: Record<string, string> };
        policyTypes?: string[];
        egress?: { to?: { ipBlock?: { cidr: string } }[] }[];
      };
      const selector = Object.entries(spec.podSelector.matchLabels ?? {}).map(([key, v]) => ({
        key,
        op: '=' as const,
        values: [v],
      }));
      if (!matches(pod.metadata.labels, selector) || !(spec.policyTypes ?? []).includes('Egress')) continue;
      governed = true;
      for (const rule of spec.egress ?? []) {
        if (!rule.to?.length) return { mode: 'open' };
        for (const peer of rule.to) if (peer.ipBlock?.cidr) blocks.add(peer.ipBlock.cidr);
      }
    }
    if (!governed) return { mode: 'open' };
    return blocks.size === 0 ? { mode: 'none' } : { mode: 'only', blocks: [...blocks] };
  };

  /** Hold every running pod of a namespace to what its NetworkPolicies allow now. */
  const reconcileEgress = (namespace: string | undefined) => {
    for (const pod of store.list(PODS, namespace))
      void track(
        runtime
          .applyEgress(pod.metadata.uid, egressOf(pod))
          .catch((error: unknown) =>
            log(`pod ${namespace}/${pod.metadata.name}: ${(error as Error).message}`),
          ),
      );
  };

  /** The kubelet: start the pod's containers, then write Running/Ready (or why it waits). */
  const runPod = async (pod: KubeObject) => {
    const { namespace, name, uid } = pod.metadata;
    const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    /** The pod cannot start (yet): logged, and written as its containers' waiting reason. */
    const waiting = (reason: string, message: string) => {
      log(`pod ${namespace}/${name}: ${message}`);
      writeStatus(PODS, namespace, name, uid, runningStatus(pod, startedAt, '', { reason, message }));
    };
    const refusal = PodRuntime.refusal(pod);
    if (refusal) {
      waiting(refusal.reason, refusal.message);
      return;
    }
    const secrets = new Map<string, SecretData>();
    for (const v of (pod.spec as { volumes?: { name: string; secret?: SecretVolumeSource }[] }).volumes ??
      []) {
      if (!v.secret) continue;
      const secret = store.find(SECRETS, namespace, v.secret.secretName);
      const data = (secret?.data ?? {}) as SecretData;
      const missing = !secret
        ? `secret "${v.secret.secretName}" not found`
        : v.secret.items?.find((item) => !(item.key in data))?.key;
      if (missing !== undefined) {
        // A kubelet keeps retrying the mount; the stand-in leaves the pod waiting with the reason.
        const message = secret
          ? `couldn't find key ${missing} in Secret ${namespace}/${secret.metadata.name}`
          : missing;
        waiting('ContainerCreating', `MountVolume.SetUp failed for volume "${v.name}": ${message}`);
        return;
      }
      secrets.set(v.secret.secretName, data);
    }
    try {
      await runtime.start(pod, egressOf(pod), secrets);
    } catch (error) {
      waiting('CreateContainerError', (error as Error).message);
      return;
    }
    const now = store.find(PODS, namespace, name);
    if (!now) {
      await runtime.remove(uid);
      return;
    }
    // A policy or a label may have changed while the containers were being made.
    await runtime.applyEgress(uid, egressOf(now));
    writeStatus(PODS, namespace, name, uid, runningStatus(pod, startedAt, await runtime.ip(uid)));
    const deadline = (pod.spec as { activeDeadlineSeconds?: number }).activeDeadlineSeconds;
    if (deadline)
      setTimer(uid, Date.parse(startedAt) + deadline * 1000, () => {
        const now = store.find(PODS, namespace, name);
        if (!now || now.metadata.uid !== uid) return;
        log(`pod ${namespace}/${name}: active deadline of ${deadline}s reached`);
        track(runtime.kill(uid));
        writeStatus(
          PODS,
          namespace,
          name,
          uid,
          endedStatus(
            now,
            'DeadlineExceeded',
            `Pod was active on the node longer than the specified deadline`,
          ),
        );
        void reconcileOwners(now);
      });
  };

  /** The agent-sandbox controller: one pod per Sandbox, its status mirrored, shutdownTime honoured. */
  const reconcileSandbox = (sandbox: KubeObject) => {
    const { namespace, name, uid } = sandbox.metadata;
    const spec = sandbox.spec as {
      podTemplate: {
        metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
        spec: unknown;
      };
      shutdownTime?: string;
      shutdownPolicy?: string;
    };
    const shutdownAt = spec.shutdownTime ? Date.parse(spec.shutdownTime) : undefined;
    if (shutdownAt !== undefined)
      setTimer(uid, shutdownAt, () => {
        const now = store.find(SANDBOXES, namespace, name);
        if (!now || now.metadata.uid !== uid) return;
        log(`sandbox ${namespace}/${name}: shutdownTime reached (${spec.shutdownPolicy ?? 'Retain'})`);
        if (spec.shutdownPolicy === 'Delete') {
          void track(deleteObject(SANDBOXES, now));
          return;
        }
        const pod = store.find(PODS, namespace, name);
        if (pod) void track(deleteObject(PODS, pod));
        const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        writeStatus(SANDBOXES, namespace, name, uid, {
          conditions: [
            { type: 'Ready', status: 'False', reason: 'SandboxExpired', lastTransitionTime: at },
            { type: 'Finished', status: 'True', reason: 'ShutdownTimeReached', lastTransitionTime: at },
          ],
        });
      });
    if (store.find(PODS, namespace, name) || (shutdownAt !== undefined && shutdownAt <= Date.now())) return;
    const pod = store.create(PODS, namespace, {
      metadata: {
        name,
        labels: { ...spec.podTemplate.metadata?.labels, 'agents.x-k8s.io/sandbox-name': name },
        annotations: { ...spec.podTemplate.metadata?.annotations },
        ownerReferences: [{ apiVersion: SANDBOXES.apiVersion, kind: 'Sandbox', name, uid, controller: true }],
      },
      spec: spec.podTemplate.spec,
    });
    void track(runPod(pod).then(() => reconcileOwners(store.find(PODS, namespace, name))));
  };

  /** Mirror a pod's readiness into the Sandbox that owns it. */
  const reconcileOwners = (pod: KubeObject | undefined) => {
    if (!pod) return;
    for (const owner of pod.metadata.ownerReferences ?? []) {
      if (owner.kind !== 'Sandbox') continue;
      const status = pod.status as
        | { phase?: string; podIPs?: unknown[]; conditions?: { type: string; status: string }[] }
        | undefined;
      const ready = status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const sandbox = writeStatus(SANDBOXES, pod.metadata.namespace, owner.name, owner.uid, {
        conditions: [
          {
            type: 'Ready',
            status: ready ? 'True' : 'False',
            reason: ready ? 'DependenciesReady' : (status?.phase ?? 'Pending'),
            lastTransitionTime: at,
          },
        ],
        podIPs: status?.podIPs ?? [],
        replicas: ready ? 1 : 0,
      });
      if (sandbox) reportToOwner(sandbox);
    }
  };

  const isReady = (obj: KubeObject) =>
    ((obj.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).some(
      (c) => c.type === 'Ready' && c.status === 'True',
    );
  const ownedBy = (obj: KubeObject, uid: string) =>
    (obj.metadata.ownerReferences ?? []).some((o) => o.uid === uid && o.controller === true);
  const ownerOf = (obj: KubeObject, type: ResourceType) => {
    const ref = obj.metadata.ownerReferences?.find((o) => o.kind === type.kind && o.controller === true);
    const owner = ref && store.find(type, obj.metadata.namespace, ref.name);
    return owner?.metadata.uid === ref?.uid ? owner : undefined;
  };
  const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

  /** A Sandbox's state into its warm pool's or its claim's status. */
  const reportToOwner = (sandbox: KubeObject) => {
    const pool = ownerOf(sandbox, SANDBOX_WARM_POOLS);
    if (pool) writePoolStatus(pool);
    const claim = ownerOf(sandbox, SANDBOX_CLAIMS);
    if (claim)
      writeStatus(SANDBOX_CLAIMS, claim.metadata.namespace, claim.metadata.name, claim.metadata.uid, {
        conditions: [
          {
            type: 'Ready',
            status: isReady(sandbox) ? 'True' : 'False',
            reason: isReady(sandbox) ? 'SandboxReady' : 'SandboxNotReady',
            lastTransitionTime: now(),
          },
        ],
        sandbox: {
          name: sandbox.metadata.name,
          podIPs: ((sandbox.status as { podIPs?: { ip: string }[] } | undefined)?.podIPs ?? []).map(
            (p) => p.ip,
          ),
        },
      });
  };

  const writePoolStatus = (pool: KubeObject) => {
    const { namespace, name, uid } = pool.metadata;
    const members = store.list(SANDBOXES, namespace).filter((sb) => ownedBy(sb, uid));
    writeStatus(SANDBOX_WARM_POOLS, namespace, name, uid, {
      replicas: members.length,
      readyReplicas: members.filter(isReady).length,
      selector: `${POOL_LABEL}=${name}`,
    });
  };

  /**
   * The warm pool controller: keep `replicas` unclaimed Sandboxes of the pool's template (owned
   * by the pool, named after it); a claim takes one out of the pool, and the pool makes another.
   */
  const reconcileWarmPool = (pool: KubeObject) => {
    const { namespace, name, uid } = pool.metadata;
    const spec = pool.spec as { replicas?: number; sandboxTemplateRef: { name: string } };
    const members = store.list(SANDBOXES, namespace).filter((sb) => ownedBy(sb, uid));
    const template = store.find(SANDBOX_TEMPLATES, namespace, spec.sandboxTemplateRef.name);
    const want = spec.replicas ?? 1;
    for (let i = members.length; template && i < want; i++) {
      const podTemplate = (
        template.spec as { podTemplate: { metadata?: { labels?: Record<string, string> } } }
      ).podTemplate;
      const sandbox = store.create(SANDBOXES, namespace, {
        metadata: {
          name: `${name}-${randomUUID().slice(0, 5)}`,
          labels: { [POOL_LABEL]: name },
          ownerReferences: [
            {
              apiVersion: SANDBOX_WARM_POOLS.apiVersion,
              kind: 'SandboxWarmPool',
              name,
              uid,
              controller: true,
            },
          ],
        },
        spec: {
          podTemplate: {
            ...podTemplate,
            metadata: {
              ...podTemplate.metadata,
              labels: { ...podTemplate.metadata?.labels, [POOL_LABEL]: name },
            },
          },
        },
      });
      reconcileSandbox(sandbox);
    }
    for (const extra of members.slice(want)) void track(deleteObject(SANDBOXES, extra));
    writePoolStatus(pool);
  };

  /**
   * The claim controller: hand the claim a Sandbox of its warm pool (a ready one first; a new one
   * from the pool's template when the pool is empty), now owned by the claim, its pod labelled
   * and annotated with `additionalPodMetadata`; end it at `lifecycle.shutdownTime`.
   */
  const reconcileClaim = (claim: KubeObject) => {
    const { namespace, name, uid } = claim.metadata;
    const spec = claim.spec as {
      warmPoolRef: { name: string };
      lifecycle?: { shutdownTime?: string; shutdownPolicy?: string };
      additionalPodMetadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    };
    const shutdownAt = spec.lifecycle?.shutdownTime ? Date.parse(spec.lifecycle.shutdownTime) : undefined;
    if (shutdownAt !== undefined)
      setTimer(uid, shutdownAt, () => {
        const current = store.find(SANDBOX_CLAIMS, namespace, name);
        if (!current || current.metadata.uid !== uid) return;
        const policy = spec.lifecycle?.shutdownPolicy ?? 'Retain';
        log(`sandboxclaim ${namespace}/${name}: shutdownTime reached (${policy})`);
        if (policy !== 'Retain') {
          void track(deleteObject(SANDBOX_CLAIMS, current));
          return;
        }
        for (const sb of store.list(SANDBOXES, namespace).filter((x) => ownedBy(x, uid)))
          void track(deleteObject(SANDBOXES, sb));
        writeStatus(SANDBOX_CLAIMS, namespace, name, uid, {
          conditions: [{ type: 'Ready', status: 'False', reason: 'ClaimExpired', lastTransitionTime: now() }],
        });
      });
    if (claim.metadata.annotations?.[CLAIM_SANDBOX_ANNOTATION]) return;
    const extra = spec.additionalPodMetadata ?? {};
    const pool = store.find(SANDBOX_WARM_POOLS, namespace, spec.warmPoolRef.name);
    const owner = {
      apiVersion: SANDBOX_CLAIMS.apiVersion,
      kind: 'SandboxClaim',
      name,
      uid,
      controller: true,
    };
    const members = pool
      ? store.list(SANDBOXES, namespace).filter((sb) => ownedBy(sb, pool.metadata.uid))
      : [];
    let sandbox = members.find(isReady) ?? members[0];
    if (sandbox) {
      const labels = { ...sandbox.metadata.labels };
      delete labels[POOL_LABEL];
      sandbox = store.update(
        SANDBOXES,
        sandbox,
        { ...sandbox, metadata: { ...sandbox.metadata, labels, ownerReferences: [owner] } },
        false,
      );
      const pod = store.find(PODS, namespace, sandbox.metadata.name);
      if (pod)
        store.update(
          PODS,
          pod,
          {
            ...pod,
            metadata: {
              ...pod.metadata,
              labels: { ...pod.metadata.labels, ...extra.labels },
              annotations: { ...pod.metadata.annotations, ...extra.annotations },
            },
          },
          false,
        );
    } else {
      const template =
        pool &&
        store.find(
          SANDBOX_TEMPLATES,
          namespace,
          (pool.spec as { sandboxTemplateRef: { name: string } }).sandboxTemplateRef.name,
        );
      if (!template) {
        writeStatus(SANDBOX_CLAIMS, namespace, name, uid, {
          conditions: [
            {
              type: 'Ready',
              status: 'False',
              reason: pool ? 'TemplateNotFound' : 'WarmPoolNotFound',
              lastTransitionTime: now(),
            },
          ],
        });
        return;
      }
      const podTemplate = (template.spec as { podTemplate: { metadata?: KubeObject['metadata'] } })
        .podTemplate;
      sandbox = store.create(SANDBOXES, namespace, {
        metadata: { name, ownerReferences: [owner] },
        spec: {
          podTemplate: {
            ...podTemplate,
            metadata: {
              labels: { ...podTemplate.metadata?.labels, ...extra.labels },
              annotations: { ...podTemplate.metadata?.annotations, ...extra.annotations },
            },
          },
        },
      });
      reconcileSandbox(sandbox);
    }
    store.update(
      SANDBOX_CLAIMS,
      claim,
      {
        ...claim,
        metadata: {
          ...claim.metadata,
          annotations: { ...claim.metadata.annotations, [CLAIM_SANDBOX_ANNOTATION]: sandbox.metadata.name },
        },
      },
      false,
    );
    reportToOwner(sandbox);
    if (pool) reconcileWarmPool(pool);
    reconcileEgress(namespace);
  };

  /** Delete an object, its dependents (ownerReferences) and, for a pod, its containers. */
  const deleteObject = async (type: ResourceType, obj: KubeObject): Promise<void> => {
    if (!store.remove(type, obj)) return;
    clearTimeout(timers.get(obj.metadata.uid));
    timers.delete(obj.metadata.uid);
    for (const dependent of store.dependents(obj.metadata.uid)) {
      const dependentType = served.find(
        (t) => t.kind === dependent.kind && t.apiVersion === dependent.apiVersion,
      );
      if (dependentType) await deleteObject(dependentType, dependent);
    }
    if (type === PODS) await runtime.remove(obj.metadata.uid);
    if (type === NETWORK_POLICIES) reconcileEgress(obj.metadata.namespace);
    if (type === SANDBOXES) {
      const pool = ownerOf(obj, SANDBOX_WARM_POOLS);
      if (pool) reconcileWarmPool(pool);
    }
  };

  const afterCreate = (type: ResourceType, obj: KubeObject) => {
    if (type === PODS && !obj.metadata.ownerReferences?.some((o) => o.kind === 'Sandbox'))
      void track(runPod(obj));
    if (type === SANDBOXES) reconcileSandbox(obj);
    if (type === NETWORK_POLICIES) reconcileEgress(obj.metadata.namespace);
    if (type === SANDBOX_WARM_POOLS) reconcileWarmPool(obj);
    if (type === SANDBOX_CLAIMS) reconcileClaim(obj);
    if (type === SANDBOX_TEMPLATES)
      for (const pool of store.list(SANDBOX_WARM_POOLS, obj.metadata.namespace)) reconcileWarmPool(pool);
  };

  const send = (res: ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  /** `/api/v1/namespaces/ns/pods/name/sub` → its parts, or undefined for a path no type serves. */
  const route = (path: string) => {
    for (const type of served) {
      const prefix = prefixOf(type);
      if (!path.startsWith(`${prefix}/`)) continue;
      const rest = path
        .slice(prefix.length + 1)
        .split('/')
        .map(decodeURIComponent);
      let namespace: string | undefined;
      if (type.namespaced) {
        if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] === type.plural) {
          namespace = rest[1];
          rest.splice(0, 2);
        } else if (rest.length !== 1) continue;
      }
      if (rest[0] !== type.plural || rest.length > 3) continue;
      return { type, namespace, name: rest[1], sub: rest[2] };
    }
    return undefined;
  };

  const parseBody = async (req: IncomingMessage): Promise<unknown> => {
    const text = (await readBody(req)).toString('utf8');
    try {
      return text ? JSON.parse(text) : {};
    } catch {
      throw new KubeFailure(400, 'BadRequest', 'the request body is not JSON');
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    if (!authorized(req)) throw new KubeFailure(401, 'Unauthorized', 'Unauthorized');
    if (method === 'GET' && url.pathname === '/version') {
      send(res, 200, {
        major: '1',
        minor: '34',
        gitVersion: 'v1.34.0-agentbox-emulator',
        platform: 'linux/amd64',
      });
      return;
    }
    // Discovery of a group version the stand-in serves (doctor asks whether agent-sandbox is installed).
    const groupVersion = url.pathname.startsWith('/apis/') ? url.pathname.slice('/apis/'.length) : undefined;
    const listed = served.filter((t) => t.apiVersion === groupVersion && groupVersion !== 'v1');
    if (method === 'GET' && listed.length > 0) {
      send(res, 200, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion,
        resources: listed.map((t) => ({
          name: t.plural,
          singularName: t.kind.toLowerCase(),
          namespaced: t.namespaced,
          kind: t.kind,
          verbs: ['create', 'delete', 'get', 'list', 'patch'],
        })),
      });
      return;
    }
    const target = route(url.pathname);
    if (
      !target ||
      (target.sub !== undefined &&
        !(target.sub === 'status' && [PODS, ...AGENT_SANDBOX_TYPES].includes(target.type)))
    ) {
      log(`404 ${method} ${url.pathname}`);
      send(
        res,
        404,
        statusBody(
          404,
          'NotFound',
          `the server could not find the requested resource (${method} ${url.pathname})`,
        ),
      );
      return;
    }
    const { type, namespace, name } = target;
    if (
      namespace !== undefined &&
      type !== NAMESPACES &&
      !store.find(NAMESPACES, undefined, namespace) &&
      method === 'POST'
    )
      throw new KubeFailure(404, 'NotFound', `namespaces "${namespace}" not found`, {
        name: namespace,
        kind: 'namespaces',
      });
    if (name === undefined) {
      if (method === 'GET') {
        const items = store.list(type, namespace, parseSelector(url.searchParams.get('labelSelector')));
        send(res, 200, {
          kind: `${type.kind}List`,
          apiVersion: type.apiVersion,
          metadata: { resourceVersion: '1' },
          items,
        });
        return;
      }
      if (method === 'POST') {
        const created = store.create(type, namespace, (await parseBody(req)) as Record<string, unknown>);
        afterCreate(type, created);
        send(res, 201, created);
        return;
      }
      throw new KubeFailure(405, 'MethodNotAllowed', `${method} is not supported on a collection here`);
    }
    const current = store.get(type, namespace, name);
    if (method === 'GET') {
      send(res, 200, current);
      return;
    }
    if (method === 'DELETE') {
      await deleteObject(type, current);
      send(res, 200, {
        ...current,
        metadata: {
          ...current.metadata,
          deletionTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      });
      return;
    }
    if (method === 'PATCH' || method === 'PUT') {
      const body = await parseBody(req);
      const kind = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      const next =
        method === 'PUT'
          ? body
          : kind === 'application/json-patch+json'
            ? jsonPatch(current, body)
            : kind === 'application/merge-patch+json' || kind === 'application/strategic-merge-patch+json'
              ? mergePatch(current, body)
              : (() => {
                  throw new KubeFailure(
                    415,
                    'UnsupportedMediaType',
                    `the patch type ${kind || '(none)'} is not supported`,
                  );
                })();
      const updated = store.update(type, current, next as Record<string, unknown>);
      if (type === SANDBOXES) reconcileSandbox(updated);
      if (type === SANDBOX_WARM_POOLS) reconcileWarmPool(updated);
      if (type === NETWORK_POLICIES || type === PODS) reconcileEgress(updated.metadata.namespace);
      send(res, 200, updated);
      return;
    }
    throw new KubeFailure(405, 'MethodNotAllowed', `${method} is not supported here`);
  };

  const server = createServer((req, res) => {
    const handled = handle(req, res).catch((error: unknown) => {
      if (error instanceof KubeFailure)
        send(res, error.code, statusBody(error.code, error.reason, error.message, error.details));
      else {
        log(`500 ${req.method} ${req.url}: ${(error as Error).stack ?? error}`);
        send(res, 500, statusBody(500, 'InternalError', (error as Error).message));
      }
    });
    void track(handled);
  });

  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => PROTOCOLS.find((p) => offered.has(p)) ?? false,
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(url.pathname);
    const refuse = (code: number, reason: string, message: string) => {
      log(`${code} upgrade ${url.pathname}: ${message}`);
      const body = JSON.stringify(statusBody(code, reason, message));
      socket.end(
        `HTTP/1.1 ${code} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    if (!authorized(req)) return refuse(401, 'Unauthorized', 'Unauthorized');
    if (!m) return refuse(404, 'NotFound', `no WebSocket endpoint at ${url.pathname}`);
    const pod = store.find(PODS, decodeURIComponent(m[1]!), decodeURIComponent(m[2]!));
    if (!pod) return refuse(404, 'NotFound', `pods "${m[2]}" not found`);
    const request = parseExecQuery(url);
    if (request.argv.length === 0)
      return refuse(400, 'BadRequest', 'you must specify at least one command for the container');
    if (request.tty) return refuse(400, 'BadRequest', 'tty is not supported by the stand-in');
    const running = runtime.get(pod.metadata.uid);
    const containerName =
      url.searchParams.get('container') ??
      (pod.spec as { containers: { name: string }[] }).containers[0]!.name;
    const container = running?.containers.get(containerName);
    const phase = (pod.status as { phase?: string } | undefined)?.phase;
    if (!container || phase !== 'Running')
      return refuse(
        400,
        'BadRequest',
        `container ${containerName} is not valid for pod ${pod.metadata.name} (phase ${phase ?? 'Pending'})`,
      );
    wss.handleUpgrade(req, socket, head, (ws) => {
      bridgeExec(ws, req, container, request, log).catch((error: unknown) => {
        log(`exec in ${pod.metadata.name}: ${(error as Error).message}`);
        ws.close(1011);
      });
    });
  });

  const url = await listenLocal(server, options.port, options.host);
  const kubeconfig = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    // client-node refuses a plain http:// server unless TLS checks are off (there is no TLS to check).
    clusters: [{ name: 'agentbox-emulator', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'agentbox-emulator', user: { token } }],
    contexts: [
      {
        name: 'agentbox-emulator',
        context: { cluster: 'agentbox-emulator', user: 'agentbox-emulator', namespace: 'default' },
      },
    ],
    'current-context': 'agentbox-emulator',
  });
  return {
    url,
    token,
    kubeconfig,
    instance,
    async close() {
      for (const t of timers.values()) clearTimeout(t);
      for (const client of wss.clients) client.terminate();
      // The pods first in each sweep; pod starts under way count as requests.
      await closeAndRemoveOwned(server, docker, instance, work, async () => {
        for (const pod of store.list(PODS, undefined)) await runtime.remove(pod.metadata.uid);
      });
    },
  };
}
