/**
 * The OCI runtime a sandbox container runs under (`config.runtime`): the daemon's default
 * (runc), or a named one such as `runsc` (gVisor: the container's system calls go to a kernel
 * in user space, not to the host's). What the daemon has is read from `docker info`; what a
 * container got, from its `HostConfig.Runtime`: the report never trusts what was asked for.
 */
import { type ControlStatus, PolicyNotEnforceableError } from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import type { DockerClient } from './client.js';

export const GVISOR = 'runsc';

/** A runtime as the daemon registered it. */
export interface RegisteredRuntime {
  name: string;
  path: string;
  args: readonly string[];
}

/** The daemon's runtimes and its default, from `docker info`. */
export interface DaemonRuntimes {
  default: string;
  runtimes: ReadonlyMap<string, RegisteredRuntime>;
}

/** The part of `docker info` that lists runtimes. */
export interface InfoRuntimes {
  DefaultRuntime?: string;
  Runtimes?: Record<string, { path?: string; runtimeArgs?: string[] | null }>;
}

export function runtimesFromInfo(info: InfoRuntimes): DaemonRuntimes {
  const runtimes = new Map<string, RegisteredRuntime>();
  for (const [name, r] of Object.entries(info.Runtimes ?? {}))
    runtimes.set(name, { name, path: r.path ?? name, args: r.runtimeArgs ?? [] });
  return { default: info.DefaultRuntime ?? 'runc', runtimes };
}

export async function daemonRuntimes(client: DockerClient): Promise<DaemonRuntimes> {
  return runtimesFromInfo((await client.docker.info()) as InfoRuntimes);
}

/** gVisor registered with `--network=none` gives its sandboxes loopback only, whatever the NetworkMode. */
export function loopbackOnly(runtime: RegisteredRuntime | undefined): boolean {
  return runtime?.name === GVISOR && runtime.args.includes('--network=none');
}

/** How to register runsc in a daemon, for the messages that say it is missing. */
export const REGISTER_RUNSC =
  'install runsc (Debian: apt-get install runsc), add "runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--platform=ptrace", "--network=none"]}} to /etc/docker/daemon.json and send dockerd SIGHUP (scripts/provision-gvisor.sh does it)';

/**
 * Before anything is created: the requested runtime is registered and can give the requested
 * network. Strict mode refuses with PolicyNotEnforceableError; otherwise the sandbox opens under
 * the daemon's default and the enforcement report says what it lacks.
 */
export function checkRuntime(
  requested: string | undefined,
  daemon: DaemonRuntimes,
  networkMode: 'none' | 'open' | 'allowlist',
  strict: boolean,
  context: ErrorContext,
): void {
  if (requested === undefined) return;
  const registered = daemon.runtimes.get(requested);
  const problems: Record<string, string> = {};
  if (!registered)
    problems.isolation = `the daemon has no runtime ${requested} (it has ${[...daemon.runtimes.keys()].join(', ') || 'none'})${requested === GVISOR ? `: ${REGISTER_RUNSC}` : ''}`;
  else if (networkMode !== 'none' && loopbackOnly(registered))
    problems.network = `runtime ${requested} is registered with --network=none: its sandboxes have loopback only, so network ${networkMode} cannot work`;
  if (!strict || Object.keys(problems).length === 0) return;
  throw new PolicyNotEnforceableError(
    `the docker backend cannot give runtime ${requested}: ${Object.values(problems).join('; ')}`,
    problems,
    { ...context, operation: 'open' },
  );
}

/**
 * The isolation control: enforced when the container runs under the runtime asked for (and, for
 * runsc, the daemon has it registered as gVisor). `got` is the container's HostConfig.Runtime.
 */
export function isolationStatus(
  requested: string | undefined,
  got: string | undefined,
  daemon: DaemonRuntimes | undefined,
  containerId: string,
): ControlStatus {
  const effective = got || daemon?.default || 'runc';
  const registered = daemon?.runtimes.get(effective);
  const id = containerId.slice(0, 12);
  if (requested !== undefined && requested !== effective)
    return {
      status: 'not-supported',
      detail: `asked for runtime ${requested}; container ${id} runs under ${effective}`,
    };
  if (effective === GVISOR) {
    if (!registered)
      return {
        status: 'not-supported',
        detail: `container ${id} names runtime runsc, which the daemon does not list`,
      };
    const args = registered.args.length ? ` ${registered.args.join(' ')}` : '';
    return {
      status: 'enforced',
      detail: `container ${id} under gVisor (${registered.path}${args}): its system calls go to gVisor's user-space kernel, not the host's; own pid/mount/ipc/uts namespaces`,
    };
  }
  return {
    status: 'enforced',
    detail: `container ${id} (runtime ${effective}, own pid/mount/ipc/uts namespaces; shares the host kernel)`,
  };
}
