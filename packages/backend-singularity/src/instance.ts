/**
 * One apptainer instance: how it is started (the flags, from the config and the policy), found
 * (`instance list --json`), checked (its init's pid still names its PID namespace) and stopped.
 */
import { InvalidArgumentError, type ParsedPolicy, SandboxUnavailableError } from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import { pidNamespaceOf as pidNamespace } from '@agentbox/core/backend';
import { type Cli, checkCli, listInstances } from './cli.js';
import type { SingularityResolvedConfig } from './config.js';

export interface InstancePlan {
  name: string;
  image: string;
  /** `instance start` flags, image and name excluded. */
  flags: string[];
}

/** A bind source or target cannot hold the separators of apptainer's bind spec. */
function bindPath(path: string, context: ErrorContext): string {
  if (/[:,]/.test(path))
    throw new InvalidArgumentError(
      `bind path ${path} contains ":" or ",", which apptainer's --bind cannot carry`,
      context,
    );
  return path;
}

/** The `instance start` flags for a sandbox. */
export function planInstance(opts: {
  name: string;
  config: SingularityResolvedConfig;
  policy: ParsedPolicy;
  workspace: string;
  overlayDir: string | undefined;
  tmpfs: boolean;
  context: ErrorContext;
}): InstancePlan {
  const { policy, config, context } = opts;
  // --containall: own PID and IPC namespaces, a clean environment, a private /tmp; no host home.
  const flags = ['--containall', '--no-home'];
  if (opts.overlayDir !== undefined) flags.push('--overlay', opts.overlayDir);
  else if (opts.tmpfs) flags.push('--writable-tmpfs');
  flags.push('--bind', `${bindPath(opts.workspace, context)}:${config.workspacePath}:rw`);
  for (const m of policy.mounts ?? [])
    flags.push(
      '--bind',
      `${bindPath(m.source, context)}:${bindPath(m.target, context)}:${m.readOnly ? 'ro' : 'rw'}`,
    );
  for (const c of policy.credentials ?? [])
    flags.push('--bind', `${bindPath(c.source, context)}:${bindPath(c.target, context)}:ro`);
  const net = policy.network?.mode;
  if (net === 'none' || net === 'allowlist') flags.push('--net', '--network', 'none');
  if (policy.limits?.pids !== undefined) flags.push('--pids-limit', String(policy.limits.pids));
  if (policy.limits?.memoryMiB !== undefined) flags.push('--memory', `${policy.limits.memoryMiB}M`);
  if (policy.limits?.cpus !== undefined) flags.push('--cpus', String(policy.limits.cpus));
  return { name: opts.name, image: config.image, flags };
}

export class Instance {
  readonly #cli: Cli;
  readonly #plan: InstancePlan;
  readonly name: string;
  /** Host pid of the instance's init. */
  readonly pid: number;
  /** `pid:[inode]` of its PID namespace when found: a reused pid never matches it. */
  readonly pidNamespace: string;

  private constructor(cli: Cli, plan: InstancePlan, pid: number, namespace: string) {
    this.#cli = cli;
    this.#plan = plan;
    this.name = plan.name;
    this.pid = pid;
    this.pidNamespace = namespace;
  }

  /** The running instance of this name, or undefined. */
  static async find(cli: Cli, plan: InstancePlan, context: ErrorContext): Promise<Instance | undefined> {
    const listed = (await listInstances(cli, context, plan.name)).find((i) => i.instance === plan.name);
    if (!listed) return undefined;
    const namespace = pidNamespace(listed.pid);
    if (namespace === undefined)
      throw new SandboxUnavailableError(
        `cannot read the PID namespace of instance ${plan.name} (pid ${listed.pid}): it runs as another user or is gone`,
        context,
      );
    return new Instance(cli, plan, listed.pid, namespace);
  }

  static async start(cli: Cli, plan: InstancePlan, context: ErrorContext): Promise<Instance> {
    await checkCli(
      cli,
      ['instance', 'start', ...plan.flags, plan.image, plan.name],
      'starting the instance',
      context,
    );
    const found = await Instance.find(cli, plan, context);
    if (!found) throw new SandboxUnavailableError(`instance ${plan.name} started but is not listed`, context);
    return found;
  }

  /** Throws unless the instance still runs (its init's pid still names its PID namespace). */
  assertAlive(context: ErrorContext): void {
    if (pidNamespace(this.pid) !== this.pidNamespace)
      throw new SandboxUnavailableError(`the sandbox's instance ${this.name} is gone`, context);
  }

  /** Stop the instance; every process in it ends with its init. Nothing to do when it is already gone. */
  async stop(context: ErrorContext): Promise<void> {
    if (pidNamespace(this.pid) !== this.pidNamespace) return;
    await checkCli(this.#cli, ['instance', 'stop', '--force', this.name], 'stopping the instance', context);
  }

  /** Start the same instance again (after stop). */
  restart(context: ErrorContext): Promise<Instance> {
    return Instance.start(this.#cli, this.#plan, context);
  }
}
