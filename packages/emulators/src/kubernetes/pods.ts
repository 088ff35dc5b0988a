/**
 * What the kubelet does in the stand-in: each pod becomes Docker containers (one per container
 * of its spec) that share its volumes (every emptyDir a tmpfs volume, world-writable as a
 * kubelet makes it) and one network namespace: `none` when a NetworkPolicy selecting the pod
 * denies all egress at the time it starts, the default bridge otherwise. The security context
 * maps to Docker's fields; a runAsNonRoot container that would run as uid 0 is not started.
 */
import type Docker from 'dockerode';
import { EMULATOR_LABEL, INSTANCE_LABEL } from '../docker.js';
import { parseQuantity } from './quantity.js';
import type { KubeObject } from './store.js';

export const POD_LABEL = 'io.agentbox.emulator.pod';

interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
}

interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: { name: string; value?: string }[];
  securityContext?: SecurityContext;
  resources?: { limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

interface PodSpec {
  containers: ContainerSpec[];
  volumes?: { name: string; emptyDir?: { medium?: string; sizeLimit?: string } }[];
  securityContext?: SecurityContext;
}

/** A started pod's containers, by container name. */
export interface RunningPod {
  containers: Map<string, Docker.Container>;
  volumes: string[];
}

/** The status a kubelet writes for a started pod (or one it could not start). */
export function runningStatus(
  pod: KubeObject,
  startedAt: string,
  ip: string,
  waiting?: { reason: string; message: string },
) {
  const spec = pod.spec as PodSpec;
  const ready = waiting ? 'False' : 'True';
  const condition = (type: string, status: string) => ({ type, status, lastTransitionTime: startedAt });
  return {
    phase: waiting ? 'Pending' : 'Running',
    conditions: [
      condition('PodScheduled', 'True'),
      condition('Initialized', 'True'),
      condition('ContainersReady', ready),
      condition('Ready', ready),
    ],
    hostIP: '127.0.0.1',
    podIP: ip,
    podIPs: [{ ip }],
    startTime: startedAt,
    qosClass: 'Guaranteed',
    containerStatuses: spec.containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: '',
      ready: !waiting,
      started: !waiting,
      restartCount: 0,
      state: waiting ? { waiting } : { running: { startedAt } },
    })),
  };
}

/** The status after the pod's deadline (or a stop): every container terminated. */
export function endedStatus(pod: KubeObject, reason: string, message: string) {
  const status = (pod.status ?? {}) as Record<string, unknown>;
  const finishedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const spec = pod.spec as PodSpec;
  return {
    ...status,
    phase: 'Failed',
    reason,
    message,
    conditions: ((status.conditions ?? []) as { type: string }[]).map((c) =>
      c.type === 'Ready' || c.type === 'ContainersReady'
        ? { ...c, status: 'False', lastTransitionTime: finishedAt }
        : c,
    ),
    containerStatuses: spec.containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: '',
      ready: false,
      started: false,
      restartCount: 0,
      state: { terminated: { exitCode: 137, reason: 'Error', finishedAt } },
    })),
  };
}

export class PodRuntime {
  readonly #docker: Docker;
  readonly #instance: string;
  readonly #running = new Map<string, RunningPod>();
  /** Pods whose containers are being made: a removal waits for that to finish first. */
  readonly #starting = new Map<string, Promise<unknown>>();

  constructor(docker: Docker, instance: string) {
    this.#docker = docker;
    this.#instance = instance;
  }

  get(uid: string): RunningPod | undefined {
    return this.#running.get(uid);
  }

  #labels(pod: KubeObject) {
    return {
      [EMULATOR_LABEL]: 'kubernetes',
      [INSTANCE_LABEL]: this.#instance,
      [POD_LABEL]: pod.metadata.uid,
    };
  }

  /** The reason a container cannot start (as a kubelet reports it), or undefined. */
  static refusal(pod: KubeObject): { reason: string; message: string } | undefined {
    const spec = pod.spec as PodSpec;
    for (const c of spec.containers) {
      const sc = { ...spec.securityContext, ...c.securityContext };
      if (sc.runAsNonRoot && !sc.runAsUser)
        return {
          reason: 'CreateContainerConfigError',
          message: `container ${c.name} has runAsNonRoot and no runAsUser: the stand-in does not read the image's user, so it may run as root`,
        };
    }
    return undefined;
  }

  /** Create and start the pod's volumes and containers. */
  start(pod: KubeObject, denyEgress: boolean): Promise<RunningPod> {
    const started = this.#start(pod, denyEgress);
    const settled = started.catch(() => {});
    this.#starting.set(pod.metadata.uid, settled);
    void settled.then(() => this.#starting.delete(pod.metadata.uid));
    return started;
  }

  async #start(pod: KubeObject, denyEgress: boolean): Promise<RunningPod> {
    const spec = pod.spec as PodSpec;
    const short = pod.metadata.uid.slice(0, 8);
    const running: RunningPod = { containers: new Map(), volumes: [] };
    this.#running.set(pod.metadata.uid, running);
    const volumeNames = new Map<string, string>();
    for (const v of spec.volumes ?? []) {
      const name = `k8s-emu-${short}-${v.name}`;
      const bytes = v.emptyDir?.sizeLimit ? parseQuantity(v.emptyDir.sizeLimit, 'sizeLimit') : 1024 ** 3;
      await this.#docker.createVolume({
        Name: name,
        Labels: this.#labels(pod),
        DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: `size=${Math.floor(bytes)},mode=0777` },
      });
      running.volumes.push(name);
      volumeNames.set(v.name, name);
    }
    let first: Docker.Container | undefined;
    for (const c of spec.containers) {
      const sc = { ...spec.securityContext, ...c.securityContext };
      const limits = c.resources?.limits ?? {};
      const user =
        sc.runAsUser !== undefined ? `${sc.runAsUser}:${sc.runAsGroup ?? sc.runAsUser}` : undefined;
      const container = await this.#docker.createContainer({
        name: `k8s-emu-${pod.metadata.name}-${c.name}-${short}`,
        Image: c.image,
        ...(c.command ? { Entrypoint: c.command } : {}),
        ...(c.args ? { Cmd: c.args } : {}),
        ...(user ? { User: user } : {}),
        ...(c.workingDir ? { WorkingDir: c.workingDir } : {}),
        Env: (c.env ?? []).map((e) => `${e.name}=${e.value ?? ''}`),
        Labels: { ...this.#labels(pod), 'io.agentbox.emulator.container': c.name },
        HostConfig: {
          ReadonlyRootfs: sc.readOnlyRootFilesystem === true,
          CapDrop: sc.capabilities?.drop ?? [],
          CapAdd: sc.capabilities?.add ?? [],
          SecurityOpt: sc.allowPrivilegeEscalation === false ? ['no-new-privileges'] : [],
          ...(limits.cpu ? { NanoCpus: Math.round(parseQuantity(limits.cpu, 'cpu') * 1e9) } : {}),
          ...(limits.memory
            ? {
                Memory: Math.round(parseQuantity(limits.memory, 'memory')),
                MemorySwap: Math.round(parseQuantity(limits.memory, 'memory')),
              }
            : {}),
          NetworkMode: first ? `container:${first.id}` : denyEgress ? 'none' : 'bridge',
          Mounts: (c.volumeMounts ?? []).map((m) => ({
            Type: 'volume' as const,
            Source: volumeNames.get(m.name)!,
            Target: m.mountPath,
            ReadOnly: m.readOnly === true,
          })),
          RestartPolicy: { Name: 'no' },
          LogConfig: { Type: 'none', Config: {} },
        },
      });
      running.containers.set(c.name, container);
      await container.start();
      first ??= container;
    }
    return running;
  }

  /** The pod's IP as Docker gave it (none without a network). */
  async ip(uid: string): Promise<string> {
    const first = this.#running.get(uid)?.containers.values().next().value;
    const info = await first?.inspect().catch(() => undefined);
    return info?.NetworkSettings?.IPAddress || '127.0.0.1';
  }

  /** Kill the containers, keeping them and the volumes (a pod past its deadline). */
  async kill(uid: string): Promise<void> {
    const pod = this.#running.get(uid);
    if (!pod) return;
    await Promise.all([...pod.containers.values()].map((c) => c.kill().catch(() => {})));
  }

  /** Remove the pod's containers and volumes. */
  async remove(uid: string): Promise<void> {
    await this.#starting.get(uid);
    const pod = this.#running.get(uid);
    this.#running.delete(uid);
    if (!pod) return;
    await Promise.all([...pod.containers.values()].map((c) => c.remove({ force: true }).catch(() => {})));
    await Promise.all(
      pod.volumes.map((v) =>
        this.#docker
          .getVolume(v)
          .remove()
          .catch(() => {}),
      ),
    );
  }
}
