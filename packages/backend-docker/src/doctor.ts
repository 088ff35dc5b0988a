/**
 * What the docker backend needs here: a daemon it can reach, the sandbox and helper images (on
 * the daemon, or to be pulled by open when the pull setting allows; doctor itself neither pulls
 * nor asks a registry), the egress network for allowlists; and which controls that daemon's
 * cgroups let it enforce.
 */
import type { ControlStatus, DoctorCheck, DoctorReport, PolicyControl } from '@agentbox/core';
import { enforcementReport } from '@agentbox/core/backend';
import {
  connectDocker,
  type DockerClient,
  dockerEnv,
  dockerMessage,
  pingDaemon,
  statusOf,
} from './client.js';
import type { DockerResolvedConfig, PullPolicy } from './config.js';
import {
  type DaemonRuntimes,
  GVISOR,
  type InfoRuntimes,
  loopbackOnly,
  REGISTER_RUNSC,
  runtimesFromInfo,
} from './container-runtime.js';

interface DaemonInfo extends InfoRuntimes {
  ServerVersion?: string;
  MemoryLimit?: boolean;
  PidsLimit?: boolean;
  CpuCfsQuota?: boolean;
}

export async function doctorDocker(config: DockerResolvedConfig): Promise<DoctorReport> {
  const context = { backend: 'docker', operation: 'doctor' };
  const checks: DoctorCheck[] = [];
  const unknown = (detail: string): ControlStatus => ({ status: 'not-supported', detail });
  let client: ReturnType<typeof connectDocker>;
  try {
    client = connectDocker(config.docker, dockerEnv(), context);
    await pingDaemon(client, Math.min(config.docker.requestTimeoutMs, 10_000), context);
  } catch (error) {
    checks.push({ name: 'daemon', ok: false, detail: (error as Error).message });
    return { ok: false, checks, controls: enforcementReport(unknown('the Docker daemon is not reachable')) };
  }
  const { docker } = client;
  const info = (await docker.info().catch(() => ({}))) as DaemonInfo;
  checks.push({
    name: 'daemon',
    ok: true,
    detail: `Docker ${info.ServerVersion ?? '(version unknown)'} at ${client.address}`,
  });
  const runtimes = runtimesFromInfo(info);
  checks.push(runtimeCheck(runtimes, config.runtime));
  const images = [...new Set([config.image, config.helperImage])];
  for (const image of images) {
    const role = image === config.image ? 'sandbox image' : 'helper image';
    checks.push(await imageCheck(client, image, role, config.pull));
  }
  const egress = await docker
    .getNetwork(config.egressNetwork)
    .inspect()
    .then(
      () => true,
      () => false,
    );
  checks.push({
    name: 'egress network',
    ok: egress,
    detail: egress
      ? `${config.egressNetwork} exists (network allowlists reach allowed hosts through it)`
      : `no network ${config.egressNetwork}: network allowlists cannot be enforced`,
  });
  const yes = (detail: string): ControlStatus => ({ status: 'enforced', detail });
  const cgroup = (supported: boolean | undefined, what: string): ControlStatus =>
    supported === false
      ? unknown(`this daemon's cgroups cannot limit ${what}`)
      : yes(`${what} limit (cgroup)`);
  const controls: Partial<Record<PolicyControl, ControlStatus>> = enforcementReport(
    yes('container setting'),
    {
      isolation: isolationControl(runtimes, config.runtime),
      'limits.pids': cgroup(info.PidsLimit, 'process'),
      'limits.memoryMiB': cgroup(info.MemoryLimit, 'memory'),
      'limits.cpus': cgroup(info.CpuCfsQuota, 'CPU'),
      network: egress
        ? yes('none, open, or an allowlist of host names through forwarder containers')
        : unknown(`none or open only: no egress network ${config.egressNetwork} for allowlists`),
    },
  );
  return { ok: checks.every((c) => c.ok), checks, controls };
}

/** Whether gVisor (runsc) is registered, and the runtime the config asks for (if any) is. */
function runtimeCheck(daemon: DaemonRuntimes, requested: string | undefined): DoctorCheck {
  const wanted = requested ?? GVISOR;
  const registered = daemon.runtimes.get(wanted);
  const names = [...daemon.runtimes.keys()].join(', ') || 'none';
  if (!registered)
    return {
      name: `runtime ${wanted}`,
      // Only a runtime the config asks for must be there; runsc is optional otherwise.
      ok: requested === undefined,
      detail: `the daemon has no runtime ${wanted} (it has ${names})${wanted === GVISOR ? `; for runtime: 'runsc', ${REGISTER_RUNSC}` : ''}`,
    };
  const args = registered.args.length ? ` ${registered.args.join(' ')}` : '';
  return {
    name: `runtime ${wanted}`,
    ok: true,
    detail: `registered: ${registered.path}${args}${loopbackOnly(registered) ? ' (its sandboxes get loopback only: network none)' : ''}${requested ? '' : "; runtime: 'runsc' runs sandboxes under gVisor"}`,
  };
}

function isolationControl(daemon: DaemonRuntimes, requested: string | undefined): ControlStatus {
  const runtime = requested ?? daemon.default;
  if (!daemon.runtimes.has(runtime))
    return { status: 'not-supported', detail: `the daemon has no runtime ${runtime}` };
  return {
    status: 'enforced',
    detail:
      runtime === GVISOR
        ? 'a gVisor (runsc) container per sandbox: a user-space kernel between its commands and the host'
        : `a container per sandbox (runtime ${runtime}; own pid, mount, ipc and uts namespaces)`,
  };
}

/** The image on the daemon, or pullable by open (the registry is not asked: doctor reaches no network). */
async function imageCheck(
  client: DockerClient,
  image: string,
  name: string,
  pull: PullPolicy,
): Promise<DoctorCheck> {
  try {
    await client.docker.getImage(image).inspect();
    return {
      name,
      ok: true,
      detail: `${image} is on the daemon${pull === 'always' ? ' (pulled again at every open)' : ''}`,
    };
  } catch (error) {
    if (statusOf(error) !== 404) return { name, ok: false, detail: `${image}: ${dockerMessage(error)}` };
  }
  if (pull === 'never')
    return {
      name,
      ok: false,
      detail: `${image} is not on the daemon and pull is 'never': \`docker pull ${image}\` or build it (see the @agentbox/backend-docker README)`,
    };
  // Asking the registry would make doctor reach the network: the first open finds out.
  return {
    name,
    ok: true,
    detail: `${image} is not on the daemon yet: the first open pulls it (pull: '${pull}')`,
  };
}
