/**
 * The hardening: the policy (DESIGN.md §3) with the docker backend's defaults filled in, turned
 * into container settings, and the enforcement report read back from `container.inspect()` —
 * what the container really got, not what was asked for.
 */
import {
  type ControlStatus,
  type EnforcementReport,
  type NetworkPolicy,
  type ParsedPolicy,
  POLICY_CONTROLS,
  type PolicyControl,
} from '@agentbox/core';
import type Docker from 'dockerode';
import { type DaemonRuntimes, GVISOR, isolationStatus, loopbackOnly } from './container-runtime.js';
import { HIDDEN_SHELL_TMPFS } from './hidden-shell.js';

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** The policy with every default applied: what this sandbox asks Docker for. */
export interface Hardening {
  readOnlyRoot: boolean;
  tmp: false | { sizeMiB: number; noexec: boolean; nosuid: boolean };
  pids: number;
  memoryMiB: number;
  cpus: number;
  /** Workspace size limit; undefined: none (the volume is on the Docker host's disk). */
  diskMiB: number | undefined;
  dropCapabilities: boolean;
  noNewPrivileges: boolean;
  nonRootUser: boolean;
  mounts: Mount[];
  credentials: Mount[];
  network: NetworkPolicy;
  /** Whether policy.secrets asks for any (never enforced here). */
  secrets: boolean;
  labels: Record<string, string>;
}

export const DEFAULTS = {
  tmp: { sizeMiB: 64, noexec: true, nosuid: true },
  pids: 256,
  memoryMiB: 2048,
  cpus: 1.5,
} as const;

export function hardeningFor(policy: ParsedPolicy): Hardening {
  return {
    readOnlyRoot: policy.readOnlyRoot ?? true,
    tmp: policy.tmp ?? { ...DEFAULTS.tmp },
    pids: policy.limits?.pids ?? DEFAULTS.pids,
    memoryMiB: policy.limits?.memoryMiB ?? DEFAULTS.memoryMiB,
    cpus: policy.limits?.cpus ?? DEFAULTS.cpus,
    diskMiB: policy.limits?.diskMiB,
    dropCapabilities: policy.dropCapabilities ?? true,
    noNewPrivileges: policy.noNewPrivileges ?? true,
    nonRootUser: policy.nonRootUser ?? true,
    mounts: (policy.mounts ?? []).map((m) => ({ source: m.source, target: m.target, readOnly: m.readOnly })),
    credentials: (policy.credentials ?? []).map((m) => ({
      source: m.source,
      target: m.target,
      readOnly: true,
    })),
    network: policy.network ?? { mode: 'none' },
    secrets: (policy.secrets?.length ?? 0) > 0,
    labels: policy.labels ?? {},
  };
}

export function tmpfsOptions(tmp: Exclude<Hardening['tmp'], false>): string {
  return ['rw', tmp.noexec ? 'noexec' : 'exec', tmp.nosuid ? 'nosuid' : 'suid', `size=${tmp.sizeMiB}m`].join(
    ',',
  );
}

/**
 * Under gVisor the host's pids cgroup counts the sentry's threads and, on the ptrace platform,
 * about eight host tasks per sandbox process; at the limit the sentry dies with the whole
 * sandbox. So the sandbox's processes are limited inside gVisor (RLIMIT_NPROC, which its kernel
 * counts per sandbox), and the host cgroup gets room for gVisor's own tasks as a backstop.
 */
export function gvisorHostPids(pids: number): number {
  return pids * 10 + 256;
}

/** HostConfig for the sandbox container (mounts of the workspace and skills volumes added by the caller). */
export function hostConfigFor(
  h: Hardening,
  volumeMounts: Docker.MountConfig,
  networkMode: string,
  gvisor = false,
): Docker.HostConfig {
  const binds: Docker.MountConfig = [...h.mounts, ...h.credentials].map((m) => ({
    Type: 'bind',
    Source: m.source,
    Target: m.target,
    ReadOnly: m.readOnly,
  }));
  const memory = h.memoryMiB * 1024 * 1024;
  return {
    ReadonlyRootfs: h.readOnlyRoot,
    Tmpfs: { ...HIDDEN_SHELL_TMPFS, ...(h.tmp ? { '/tmp': tmpfsOptions(h.tmp) } : {}) },
    PidsLimit: gvisor ? gvisorHostPids(h.pids) : h.pids,
    ...(gvisor ? { Ulimits: [{ Name: 'nproc', Soft: h.pids, Hard: h.pids }] } : {}),
    Memory: memory,
    // No swap beyond the memory limit.
    MemorySwap: memory,
    NanoCpus: Math.round(h.cpus * 1e9),
    ...(h.dropCapabilities ? { CapDrop: ['ALL'] } : {}),
    ...(h.noNewPrivileges ? { SecurityOpt: ['no-new-privileges'] } : {}),
    NetworkMode: networkMode,
    Mounts: [...volumeMounts, ...binds],
    RestartPolicy: { Name: 'no' },
    LogConfig: { Type: 'none', Config: {} },
  };
}

/** Facts read from inside the sandbox and about its network, beside `inspect()`. */
export interface Observed {
  uid: number;
  gid: number;
  /** For allowlist mode: the internal network is internal and the forwarder runs. */
  network?: { internal: boolean; name: string; forwarding: readonly string[]; sentinel: boolean } | undefined;
  /** The workspace volume's driver options, as the daemon reports them. */
  workspace?: { options: Record<string, string> } | undefined;
  /** Checkpoint manifests are authenticated with a key the sandbox never sees. */
  manifestsAuthenticated?: boolean;
  /** The runtime asked for (`config.runtime`) and the daemon's runtimes (`docker info`). */
  runtime?: { requested: string | undefined; daemon: DaemonRuntimes | undefined };
}

const enforced = (detail: string): ControlStatus => ({ status: 'enforced', detail });
const missing = (detail: string): ControlStatus => ({ status: 'not-supported', detail });
const notRequested = (detail: string): ControlStatus => ({ status: 'not-requested', detail });

function tmpfsFlags(options: string | undefined): {
  noexec: boolean;
  nosuid: boolean;
  sizeMiB: number | undefined;
} {
  const flags = new Set((options ?? '').split(',').map((s) => s.trim()));
  const size = [...flags].find((f) => f.startsWith('size='))?.slice(5);
  let sizeMiB: number | undefined;
  if (size) {
    const m = /^(\d+)([kmg]?)$/i.exec(size);
    if (m) {
      const n = Number(m[1]);
      const unit = m[2]!.toLowerCase();
      sizeMiB = unit === 'g' ? n * 1024 : unit === 'm' ? n : unit === 'k' ? n / 1024 : n / 1024 / 1024;
    }
  }
  return { noexec: flags.has('noexec'), nosuid: flags.has('nosuid'), sizeMiB };
}

/** Compare what was asked with what the container got, control by control. */
export function readEnforcement(
  h: Hardening,
  info: Docker.ContainerInspectInfo,
  observed: Observed,
): EnforcementReport {
  const hc = info.HostConfig;
  const report = {} as Record<PolicyControl, ControlStatus>;
  const runtime = (hc as { Runtime?: string }).Runtime;
  const daemon = observed.runtime?.daemon;
  report.isolation = isolationStatus(observed.runtime?.requested, runtime, daemon, info.Id);
  const effective = daemon?.runtimes.get(runtime || daemon.default);

  const ro = hc.ReadonlyRootfs === true;
  report.readOnlyRoot = h.readOnlyRoot
    ? ro
      ? enforced('root filesystem mounted read-only (HostConfig.ReadonlyRootfs)')
      : missing('the container root filesystem is writable')
    : notRequested(ro ? 'read-only anyway' : 'root filesystem writable (readOnlyRoot: false)');

  const tmpOptions = (hc.Tmpfs as Record<string, string> | undefined)?.['/tmp'];
  if (h.tmp === false) {
    report.tmp = notRequested(
      tmpOptions ? `tmpfs /tmp ${tmpOptions}` : '/tmp as the image has it (tmp: false)',
    );
  } else {
    const got = tmpfsFlags(tmpOptions);
    const ok =
      tmpOptions !== undefined &&
      (!h.tmp.noexec || got.noexec) &&
      (!h.tmp.nosuid || got.nosuid) &&
      got.sizeMiB === h.tmp.sizeMiB;
    report.tmp = ok
      ? enforced(`tmpfs /tmp ${tmpOptions}`)
      : missing(`/tmp is ${tmpOptions ? `tmpfs ${tmpOptions}` : 'not a tmpfs'}`);
  }

  const pids = hc.PidsLimit ?? 0;
  const nproc = ((hc.Ulimits ?? []) as { Name?: string; Soft?: number; Hard?: number }[]).find(
    (u) => u.Name === 'nproc',
  );
  if (effective?.name === GVISOR)
    report['limits.pids'] =
      nproc?.Soft === h.pids && nproc.Hard === h.pids && pids === gvisorHostPids(h.pids)
        ? enforced(
            `at most ${h.pids} processes of the sandbox user, counted by gVisor's kernel (RLIMIT_NPROC); the host cgroup limit ${pids} covers gVisor's own tasks`,
          )
        : missing(
            `RLIMIT_NPROC is ${nproc ? `${nproc.Soft}/${nproc.Hard}` : 'unset'} and the host pids limit ${pids || 'unlimited'}, not ${h.pids} and ${gvisorHostPids(h.pids)}`,
          );
  else
    report['limits.pids'] =
      pids === h.pids
        ? enforced(`pids limit ${pids} (cgroup)`)
        : missing(`pids limit is ${pids || 'unlimited'}, not ${h.pids}`);
  const memory = hc.Memory ?? 0;
  const wantMemory = h.memoryMiB * 1024 * 1024;
  report['limits.memoryMiB'] =
    memory === wantMemory
      ? enforced(`memory limit ${h.memoryMiB} MiB, no extra swap (cgroup)`)
      : missing(
          `memory limit is ${memory ? `${memory / 1024 / 1024} MiB` : 'unlimited'} (the daemon may lack memory cgroup support)`,
        );
  const nano = hc.NanoCpus ?? 0;
  report['limits.cpus'] =
    nano === Math.round(h.cpus * 1e9)
      ? enforced(`${h.cpus} CPUs (cgroup CFS quota)`)
      : missing(`CPU limit is ${nano ? nano / 1e9 : 'unlimited'}`);

  const ws = observed.workspace?.options ?? {};
  const wsSize = ws.type === 'tmpfs' ? tmpfsFlags(ws.o).sizeMiB : undefined;
  report['limits.diskMiB'] =
    h.diskMiB === undefined
      ? notRequested(
          wsSize === undefined
            ? "the workspace volume is on the Docker host's disk, with no size limit"
            : `workspace tmpfs of ${wsSize} MiB`,
        )
      : wsSize === h.diskMiB
        ? enforced(
            `workspace is a ${wsSize} MiB tmpfs volume: writes beyond fail with ENOSPC. Memory-backed: it uses host memory, and its contents last only while the sandbox's containers run`,
          )
        : missing(`the workspace volume is ${wsSize === undefined ? 'not size-limited' : `${wsSize} MiB`}`);

  report.checkpointIntegrity = enforced(
    [
      'the container is paused (cgroup freezer) while a checkpoint or rollback reads or rewrites its tree',
      'the store is a volume only the checkpoint helper mounts',
      observed.manifestsAuthenticated
        ? "core's store gets a per-sandbox manifest key, kept in a container label"
        : "no manifest key (the store is out of the sandbox's reach)",
    ].join('; '),
  );

  const capDrop = ((hc.CapDrop ?? []) as string[]).map((c) => c.toUpperCase().replace(/^CAP_/, ''));
  const capAdd = (hc.CapAdd ?? []) as string[];
  const allDropped = capDrop.includes('ALL') && capAdd.length === 0;
  report.dropCapabilities = h.dropCapabilities
    ? allDropped
      ? enforced('CapDrop ALL, nothing added')
      : missing(`capabilities: drop ${capDrop.join(',') || 'none'}, add ${capAdd.join(',') || 'none'}`)
    : notRequested(allDropped ? 'all dropped anyway' : "Docker's default capability set");

  const secOpts = (hc.SecurityOpt ?? []) as string[];
  const nnp = secOpts.some((o) => /^no-new-privileges(?:[:=]true)?$/.test(o));
  report.noNewPrivileges = h.noNewPrivileges
    ? nnp
      ? enforced('security-opt no-new-privileges')
      : missing('no-new-privileges is not set')
    : notRequested(nnp ? 'set anyway' : 'not set (noNewPrivileges: false)');

  const nonRoot = observed.uid !== 0;
  report.nonRootUser = h.nonRootUser
    ? nonRoot
      ? enforced(`commands run as uid ${observed.uid}, gid ${observed.gid}`)
      : missing('commands run as root (uid 0)')
    : notRequested(`commands run as uid ${observed.uid}`);

  const mounts = info.Mounts ?? [];
  const find = (m: Mount) => mounts.find((x) => x.Destination === m.target);
  const writable = mounts
    .filter((m) => m.RW)
    .map((m) => `${m.Destination} (${m.Type === 'volume' ? `volume ${m.Name}` : m.Type})`)
    .join(', ');
  if (h.mounts.length === 0) {
    report.mounts = notRequested(`writable mounts: ${writable || 'none'}`);
  } else {
    const bad = h.mounts.filter((m) => {
      const got = find(m);
      return got?.Type !== 'bind' || got.Source !== m.source || got.RW === m.readOnly;
    });
    report.mounts = bad.length
      ? missing(`not mounted as asked: ${bad.map((m) => m.target).join(', ')}`)
      : enforced(h.mounts.map((m) => `${m.source} → ${m.target} (${m.readOnly ? 'ro' : 'rw'})`).join(', '));
  }
  if (h.credentials.length === 0) {
    report.credentials = notRequested('no credentials mounted');
  } else {
    const bad = h.credentials.filter((m) => {
      const got = find(m);
      return got?.Type !== 'bind' || got.Source !== m.source || got.RW;
    });
    report.credentials = bad.length
      ? missing(`not mounted read-only: ${bad.map((m) => m.target).join(', ')}`)
      : enforced(h.credentials.map((m) => `${m.target} (read-only bind)`).join(', '));
  }

  const mode = hc.NetworkMode ?? 'default';
  // gVisor registered with --network=none gives every sandbox loopback only.
  const netless = loopbackOnly(effective);
  if (netless && h.network.mode !== 'none')
    report.network = missing(
      `runtime ${effective?.name} is registered with --network=none: the sandbox has loopback only, not network ${h.network.mode}`,
    );
  else
    switch (h.network.mode) {
      case 'none':
        report.network =
          mode === 'none' ? enforced('network mode none: loopback only') : missing(`network mode is ${mode}`);
        break;
      case 'open':
        report.network = notRequested(`network mode ${mode}`);
        break;
      case 'allowlist': {
        const net = observed.network;
        const wanted = [...new Set(h.network.allow.map((a) => a.toLowerCase()))].sort().join(', ');
        const got = [...(net?.forwarding ?? [])].sort().join(', ');
        report.network =
          net?.internal && mode === net.name && got === wanted
            ? enforced(
                `internal network ${net.name} (no route out); a forwarder reaches only ${wanted}; ${
                  net.sentinel
                    ? 'connections to other addresses on those ports are logged (lookups of other names fail, unlogged)'
                    : 'denied attempts are not logged (no sentinel)'
                }`,
              )
            : missing(
                `network mode ${mode}${net ? `, internal ${net.internal}, forwarding ${got || 'nothing'}` : ''}`,
              );
        break;
      }
    }

  const labels = info.Config.Labels ?? {};
  const wantLabels = Object.entries(h.labels);
  if (wantLabels.length === 0) {
    report.labels = notRequested('agentbox labels only (creator, sandbox id, creation time)');
  } else {
    const bad = wantLabels.filter(([k, v]) => labels[k] !== v).map(([k]) => k);
    report.labels = bad.length
      ? missing(`labels missing: ${bad.join(', ')}`)
      : enforced(`labels on every container, volume and network: ${wantLabels.map(([k]) => k).join(', ')}`);
  }

  const noSecrets =
    "the forwarder containers relay bytes without reading them, so no placeholder can be swapped; the local (isolation 'bwrap') and ssh backends can";
  report.secrets = h.secrets ? missing(noSecrets) : notRequested(`none requested (${noSecrets})`);
  for (const control of POLICY_CONTROLS) report[control] ??= missing('not reported');
  return report;
}
