/**
 * What the kubelet does in the stand-in: each pod becomes Docker containers that share its
 * volumes (every emptyDir a tmpfs volume, world-writable as a kubelet makes it) and the network
 * namespace of a pause container on the default bridge, whose routes hold the pod to what its
 * NetworkPolicies allow (redone when they or its labels change). Init containers run first, one
 * at a time, each to a zero exit. A secret volume is a local volume filled with the Secret's
 * keys before anything starts (owned by root, group fsGroup, mode from the volume, as a kubelet
 * writes them). The security context maps to Docker's fields; a runAsNonRoot container that
 * would run as uid 0 is not started.
 */
import { join } from 'node:path';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { EMULATOR_LABEL, INSTANCE_LABEL, runInContainer } from '../docker.js';
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
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
}

interface SecretVolume {
  secretName: string;
  items?: { key: string; path: string; mode?: number }[];
  defaultMode?: number;
}

interface PodSpec {
  containers: ContainerSpec[];
  initContainers?: ContainerSpec[];
  volumes?: { name: string; emptyDir?: { medium?: string; sizeLimit?: string }; secret?: SecretVolume }[];
  securityContext?: SecurityContext & { fsGroup?: number };
}

/** A Secret's `data` (base64 values by key), as the store holds it. */
export type SecretData = Record<string, string>;

/** What the pod's NetworkPolicies let it reach (emulator.ts works it out). */
export type PodEgress = { mode: 'open' } | { mode: 'none' } | { mode: 'only'; blocks: string[] };

/** A started pod's containers, by container name. */
export interface RunningPod {
  containers: Map<string, Docker.Container>;
  /** The pause container: it holds the pod's network namespace and keeps its tmpfs volumes mounted. */
  pause?: Docker.Container;
  /** Its bridge network, and the egress its routes hold the pod to (as JSON). */
  network?: { gateway: string; subnet: string; applied: string };
  volumes: string[];
}

/**
 * Run in the pause container (root, NET_ADMIN only): $1 the mode, $2 the gateway, $3 the
 * subnet, then the allowed blocks. `open` restores the bridge's routes; `none` leaves the main
 * table empty; `only` keeps a route to the gateway and one per allowed IPv4 block through it.
 * Any other address is unreachable at once. Ports are not told apart (a route has none).
 */
const ROUTE_SCRIPT = `set -e
m=$1 gw=$2 net=$3; shift 3
ip route flush table main
case $m in
open) ip route add "$net" dev eth0; ip route add default via "$gw" ;;
only)
  ip route add "$gw/32" dev eth0
  for block in "$@"; do
    case $block in *:*) continue ;; esac
    [ "$block" = "$gw/32" ] || ip route add "$block" via "$gw"
  done ;;
esac`;

/** The IPv4 network of an address and prefix length, as `a.b.c.d/n`. */
function subnetOf(ip: string, prefix: number): string {
  const n = ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
  const base = prefix === 0 ? 0 : n - (n % 2 ** (32 - prefix));
  return `${[24, 16, 8, 0].map((shift) => Math.floor(base / 2 ** shift) % 256).join('.')}/${prefix}`;
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
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      const sc = { ...spec.securityContext, ...c.securityContext };
      if (sc.runAsNonRoot && !sc.runAsUser)
        return {
          reason: 'CreateContainerConfigError',
          message: `container ${c.name} has runAsNonRoot and no runAsUser: the stand-in does not read the image's user, so it may run as root`,
        };
      const secretVolumes = new Set((spec.volumes ?? []).filter((v) => v.secret).map((v) => v.name));
      const subPath = c.volumeMounts?.find((m) => m.subPath && !secretVolumes.has(m.name));
      if (subPath)
        return {
          reason: 'CreateContainerConfigError',
          message: `container ${c.name} mounts a subPath of volume ${subPath.name}: the stand-in serves subPath on secret volumes only`,
        };
    }
    return undefined;
  }

  /** Create and start the pod's volumes and containers; `secrets` holds each secret volume's data. */
  start(pod: KubeObject, egress: PodEgress, secrets: Map<string, SecretData>): Promise<RunningPod> {
    const started = this.#start(pod, egress, secrets);
    const settled = started.catch(() => {});
    this.#starting.set(pod.metadata.uid, settled);
    void settled.then(() => this.#starting.delete(pod.metadata.uid));
    return started;
  }

  async #start(pod: KubeObject, egress: PodEgress, secrets: Map<string, SecretData>): Promise<RunningPod> {
    const spec = pod.spec as PodSpec;
    const short = pod.metadata.uid.slice(0, 8);
    const running: RunningPod = { containers: new Map(), volumes: [] };
    this.#running.set(pod.metadata.uid, running);
    const volumeNames = new Map<string, string>();
    /** Each secret volume's folder on this host, by the pod's volume name. */
    const secretFolders = new Map<string, string>();
    for (const v of spec.volumes ?? []) {
      const name = `k8s-emu-${short}-${v.name}`;
      // A secret volume is a plain local volume: a tmpfs volume would forget what was written
      // into it before a container that keeps it mounted starts.
      const bytes = v.emptyDir?.sizeLimit ? parseQuantity(v.emptyDir.sizeLimit, 'sizeLimit') : 1024 ** 3;
      await this.#docker.createVolume({
        Name: name,
        Labels: this.#labels(pod),
        ...(v.secret
          ? {}
          : { DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: `size=${Math.floor(bytes)},mode=0777` } }),
      });
      running.volumes.push(name);
      volumeNames.set(v.name, name);
      if (v.secret) {
        await this.#fillSecretVolume(pod, name, v.secret, secrets.get(v.secret.secretName) ?? {});
        secretFolders.set(v.name, (await this.#docker.getVolume(name).inspect()).Mountpoint);
      }
    }
    const mounts = { volumeNames, secretFolders };
    const tmpfs = (spec.volumes ?? []).filter((v) => !v.secret).map((v) => volumeNames.get(v.name)!);
    const pause = await this.#pause(pod, running, egress, tmpfs);
    const network = `container:${pause.id}`;
    // Init containers run one at a time, each to a zero exit, before any container starts.
    for (const c of spec.initContainers ?? []) {
      const init = await this.#create(pod, c, network, mounts, 'init');
      try {
        await init.start();
        const { StatusCode } = (await init.wait()) as { StatusCode: number };
        if (StatusCode !== 0) throw new Error(`init container ${c.name} exited ${StatusCode}`);
      } finally {
        await init.remove({ force: true }).catch(() => {});
      }
    }
    for (const c of spec.containers) {
      const container = await this.#create(pod, c, network, mounts, c.name);
      running.containers.set(c.name, container);
      await container.start();
    }
    return running;
  }

  /** A Docker container for one container of the pod's spec, in the pause container's network. */
  #create(
    pod: KubeObject,
    c: ContainerSpec,
    network: string,
    mounts: { volumeNames: Map<string, string>; secretFolders: Map<string, string> },
    role: string,
  ): Promise<Docker.Container> {
    const spec = pod.spec as PodSpec;
    const sc = { ...spec.securityContext, ...c.securityContext };
    const limits = c.resources?.limits ?? {};
    const user = sc.runAsUser !== undefined ? `${sc.runAsUser}:${sc.runAsGroup ?? sc.runAsUser}` : undefined;
    return this.#docker.createContainer({
      name: `k8s-emu-${pod.metadata.name}-${role === 'init' ? `init-${c.name}` : c.name}-${pod.metadata.uid.slice(0, 8)}`,
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
        NetworkMode: network,
        Mounts: (c.volumeMounts ?? []).map((m) =>
          // Docker's own volume subpaths need API 1.45; a subPath of a secret volume is a bind
          // of that path of the volume's folder on this host instead.
          m.subPath
            ? {
                Type: 'bind' as const,
                Source: join(mounts.secretFolders.get(m.name)!, m.subPath),
                Target: m.mountPath,
                ReadOnly: true,
              }
            : {
                Type: 'volume' as const,
                Source: mounts.volumeNames.get(m.name)!,
                Target: m.mountPath,
                // A kubelet mounts secret volumes read-only whatever the mount says.
                ReadOnly: m.readOnly === true || mounts.secretFolders.has(m.name),
              },
        ),
        RestartPolicy: { Name: 'no' },
        LogConfig: { Type: 'none', Config: {} },
      },
    });
  }

  /**
   * Write a Secret's keys into a volume: every key (or only `items`, at their paths), owned by
   * root and the pod's fsGroup, through a container of the pod's first image that never starts.
   */
  async #fillSecretVolume(pod: KubeObject, volume: string, secret: SecretVolume, data: SecretData) {
    const spec = pod.spec as PodSpec;
    const gid = spec.securityContext?.fsGroup ?? 0;
    const files = secret.items ?? Object.keys(data).map((key) => ({ key, path: key, mode: undefined }));
    const tar = pack();
    const dirs = new Set<string>();
    for (const item of files) {
      const parts = item.path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        if (dirs.has(dir)) continue;
        dirs.add(dir);
        tar.entry({ name: dir, type: 'directory', mode: 0o755, uid: 0, gid });
      }
      tar.entry(
        { name: item.path, mode: item.mode ?? secret.defaultMode ?? 0o644, uid: 0, gid },
        Buffer.from(data[item.key] ?? '', 'base64'),
      );
    }
    tar.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of tar) chunks.push(chunk as Buffer);
    const filler = await this.#docker.createContainer({
      Image: spec.containers[0]!.image,
      Entrypoint: ['true'],
      Labels: this.#labels(pod),
      HostConfig: { Mounts: [{ Type: 'volume', Source: volume, Target: '/secret' }], NetworkMode: 'none' },
    });
    try {
      await filler.putArchive(Buffer.concat(chunks), { path: '/secret' });
    } finally {
      await filler.remove({ force: true }).catch(() => {});
    }
  }

  /**
   * The pod's pause container, as a kubelet makes one: it holds the network namespace every
   * container joins (none when egress is denied; the bridge, its routes cut down to the allowed
   * blocks as root with NET_ADMIN only, when it is limited) and keeps the tmpfs volumes mounted,
   * so what an init container writes is there when the containers start.
   */
  async #pause(
    pod: KubeObject,
    running: RunningPod,
    egress: PodEgress,
    tmpfs: string[],
  ): Promise<Docker.Container> {
    const spec = pod.spec as PodSpec;
    const pause = await this.#docker.createContainer({
      name: `k8s-emu-${pod.metadata.name}-pause-${pod.metadata.uid.slice(0, 8)}`,
      Image: spec.containers[0]!.image,
      Entrypoint: ['/bin/sh', '-c', "trap 'exit 0' TERM; while :; do sleep 86400 & wait; done"],
      User: '0:0',
      Labels: this.#labels(pod),
      HostConfig: {
        NetworkMode: 'bridge',
        CapDrop: ['ALL'],
        CapAdd: ['NET_ADMIN'],
        ReadonlyRootfs: true,
        Mounts: tmpfs.map((volume) => ({
          Type: 'volume' as const,
          Source: volume,
          Target: `/volumes/${volume}`,
          ReadOnly: true,
        })),
        RestartPolicy: { Name: 'no' },
        LogConfig: { Type: 'none', Config: {} },
      },
    });
    running.pause = pause;
    await pause.start();
    const settings = (await pause.inspect()).NetworkSettings;
    running.network = {
      gateway: settings.Gateway,
      subnet: subnetOf(settings.IPAddress, settings.IPPrefixLen),
      applied: JSON.stringify({ mode: 'open' }),
    };
    await this.applyEgress(pod.metadata.uid, egress);
    return pause;
  }

  /**
   * Hold a running pod to what its NetworkPolicies allow now (as a network plugin does when a
   * policy or the pod's labels change); nothing to do when that has not changed.
   */
  async applyEgress(uid: string, egress: PodEgress): Promise<void> {
    const pod = this.#running.get(uid);
    const key = JSON.stringify(egress);
    if (!pod?.pause || !pod.network || pod.network.applied === key) return;
    const { gateway, subnet } = pod.network;
    const blocks = egress.mode === 'only' ? egress.blocks : [];
    const r = await runInContainer(pod.pause, [
      '/bin/sh',
      '-c',
      ROUTE_SCRIPT,
      'routes',
      egress.mode,
      gateway,
      subnet,
      ...blocks,
    ]);
    if (r.exitCode !== 0)
      throw new Error(`the pod's egress routes could not be set: ${r.stderr.toString().trim()}`);
    pod.network.applied = key;
  }

  /** The pod's IP as Docker gave it (none without a network). */
  async ip(uid: string): Promise<string> {
    const info = await this.#running
      .get(uid)
      ?.pause?.inspect()
      .catch(() => undefined);
    return info?.NetworkSettings?.IPAddress || '127.0.0.1';
  }

  /** Kill the containers, keeping them and the volumes (a pod past its deadline). */
  async kill(uid: string): Promise<void> {
    const pod = this.#running.get(uid);
    if (!pod) return;
    await Promise.all([...pod.containers.values()].map((c) => c.kill().catch(() => {})));
    await pod.pause?.kill().catch(() => {});
  }

  /** Remove the pod's containers and volumes. */
  async remove(uid: string): Promise<void> {
    await this.#starting.get(uid);
    const pod = this.#running.get(uid);
    this.#running.delete(uid);
    if (!pod) return;
    await Promise.all([...pod.containers.values()].map((c) => c.remove({ force: true }).catch(() => {})));
    await pod.pause?.remove({ force: true }).catch(() => {});
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
