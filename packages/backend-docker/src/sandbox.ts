/**
 * DockerSandbox: one long-lived, hardened container per sandbox. Commands are docker execs
 * (exec.ts), files go through the archive API (files.ts), checkpoints are kept by the core
 * ExecCheckpointStore in a separate labelled volume that only a small helper container mounts
 * (checkpoints.ts), and the enforcement report is read back from `container.inspect()`.
 */

import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  AbortedError,
  type EnforcementReport,
  InvalidArgumentError,
  PolicyNotEnforceableError,
  SandboxUnavailableError,
  signalNumber,
  UnsupportedError,
} from '@agentbox/core';
import {
  BaseSandbox,
  type CheckpointStore,
  collectProcess,
  type EgressDenial,
  EgressDenialLog,
  type ErrorContext,
  OOM_KILLS_SCRIPT,
  OomKillCounter,
  type OpenContext,
  parseOomKills,
  type RawProcess,
  type RunnerPrograms,
  SessionPool,
  type StartRequest,
} from '@agentbox/core/backend';
import type Docker from 'dockerode';
import * as tar from 'tar-stream';
import { CheckpointHelper } from './checkpoints.js';
import { connectDocker, type DockerClient, dockerEnv, dockerError, pingDaemon, statusOf } from './client.js';
import type { DockerResolvedConfig, PullPolicy } from './config.js';
import { checkRuntime, daemonRuntimes, GVISOR } from './container-runtime.js';
import { daemonFacts, type ProbedUser } from './daemon-facts.js';
import { followSentinel } from './egress-sentinel.js';
import {
  type ExecTarget,
  killInContainer,
  newNonce,
  runExec,
  startWrapped,
  type WrappedProcess,
} from './exec.js';
import { DockerFiles } from './files.js';
import { PauseGate } from './gate.js';
import { type Hardening, hardeningFor, hostConfigFor, readEnforcement } from './hardening.js';
import {
  HIDDEN_SHELL_INIT,
  HIDDEN_SHELL_INIT_USER,
  type HiddenShell,
  hiddenShellAnnounced,
  type InstallOutcome,
  installHiddenShell,
} from './hidden-shell.js';
import {
  ensureImage,
  type ImageField,
  missingToolsError,
  parseToolsProbe,
  SANDBOX_TOOLS,
  TOOLS_PROBE,
} from './image.js';
import { defaultOwner, LABEL, labelFilter, labelsFor, names } from './labels.js';
import { EgressAllowlist } from './network.js';
import { freeze, resume } from './pause.js';

/** Extra labels on the sandbox container, so that a re-attach finds its settings again. */
const META = {
  workdir: 'agentbox.workdir',
  user: 'agentbox.user',
  skills: 'agentbox.skills-dir',
  /**
   * The key that authenticates checkpoint manifests: random per sandbox, kept where only the
   * Docker API reaches (no process in the sandbox or the helper can read a container label).
   */
  checkpointKey: 'agentbox.checkpoint-key',
} as const;

/** Who commands run as (`uid N`, `gid N`), then the image's tools (see TOOLS_PROBE). */
const PROBE = `printf 'uid %s\\ngid %s\\n' "$(id -u 2>/dev/null)" "$(id -g 2>/dev/null)"
${TOOLS_PROBE}`;

interface SandboxParts {
  id: string;
  client: DockerClient;
  container: Docker.Container;
  info: Docker.ContainerInspectInfo;
  hardening: Hardening;
  config: DockerResolvedConfig;
  user: string;
  workdir: string;
  uid: number;
  gid: number;
  setsid: string;
  egress: EgressAllowlist | undefined;
  /** Unix seconds from which the sentinel's reports are this process's to log (open: 0; re-attach: its time). */
  egressSince: number;
  /** Hex; undefined for a sandbox created before keys existed. */
  checkpointKey: string | undefined;
  /** Labels for the objects created later (the checkpoint helper): the policy's and the owner's. */
  objectLabels: Record<string, string>;
  /** The pull setting for the helper image when the helper starts. */
  helperPull: PullPolicy;
  /** What PID 1 said of the hidden shell's install; absent on re-attach (installed by exec). */
  installed?: () => Promise<InstallOutcome>;
}

export class DockerSandbox extends BaseSandbox {
  protected readonly checkpoints: CheckpointStore;
  /** The container's Docker id. */
  readonly containerId: string;
  /** The OCI runtime the container runs under, as the daemon reports it (`runc`, `runsc`...). */
  readonly runtime: string;
  readonly #parts: SandboxParts;
  readonly #target: ExecTarget;
  readonly #files: DockerFiles;
  readonly #helper: CheckpointHelper;
  readonly #nonce = newNonce();
  readonly #gate = new PauseGate();
  /**
   * A pause of this handle's may be in place that no unpause ended (the unpause failed, or the
   * pause's answer was lost): the next checkpoint ends it before its own.
   */
  #mayBePaused = false;
  /** The container's memory cgroup OOM-kill count, read inside the container (a fresh cgroup starts at 0). */
  readonly #oomKills = new OomKillCounter(async () => {
    const r = await runExec(this.#target, {
      argv: ['/bin/sh', '-c', OOM_KILLS_SCRIPT],
      user: this.#parts.user,
    });
    return parseOomKills(r.stdout.toString('utf8'));
  });
  /** The sessions' shells: a kill on a session spares its runner and reaches whoever holds its pipes. */
  readonly #shells = new Set<WrappedProcess>();
  readonly #denials: EgressDenialLog | undefined;
  /** Following the egress sentinel's reports; settles to the function that stops it. */
  readonly #following: Promise<(() => void) | undefined> | undefined;
  #hidden: Promise<HiddenShell> | undefined;
  #runnerPrograms: RunnerPrograms | undefined;
  /**
   * The fast exec path (core's SessionPool) in front of the plain one: small commands run down
   * a shell already open in the container. `sessions.lastPath` and `sessions.stats` say which
   * path commands took; `config.fastPath: false` sends every command down the plain path.
   */
  readonly sessions: SessionPool;

  /** @internal Built by openSandbox; its parts carry dockerode types, kept out of the published types. */
  constructor(parts: SandboxParts, enforcement: EnforcementReport) {
    super({
      kind: 'docker',
      id: parts.id,
      workdir: parts.workdir,
      capabilities: {
        isolation: 'container',
        checkpoints: true,
        spawn: true,
        stdin: true,
        kill: true,
        nonRootUser: parts.uid !== 0,
        networkPolicy: true,
        reattach: true,
        unsupported: parts.uid === 0 ? { nonRootUser: 'the container user is root (uid 0)' } : {},
      },
      enforcement,
      baseEnv: parts.config.env,
    });
    this.#parts = parts;
    this.containerId = parts.info.Id;
    this.runtime = (parts.info.HostConfig as { Runtime?: string }).Runtime || 'runc';
    this.#target = {
      container: parts.container,
      context: { backend: 'docker', sandboxId: parts.id },
      gate: this.#gate,
    };
    const tmpfs = Object.keys((parts.info.HostConfig.Tmpfs as Record<string, string> | undefined) ?? {});
    const tmpfsMounts = (parts.info.Mounts ?? []).filter((m) => m.Type === 'tmpfs').map((m) => m.Destination);
    this.#files = new DockerFiles({
      container: parts.container,
      context: this.#target.context,
      user: parts.user,
      uid: parts.uid,
      gid: parts.gid,
      execOnly: ['/proc', '/sys', '/dev', ...tmpfs, ...tmpfsMounts],
      gate: this.#gate,
      daemon: parts.client,
      run: async (argv, signal) => {
        const proc = await this.sessions.startProcess({ argv, cwd: '/', env: {} }, signal);
        // In the same tick: the session learns the command takes no input, and stays reusable.
        void proc.closeStdin();
        const r = await collectProcess(proc);
        return { ...r, exitCode: r.exitCode ?? 128 + (r.signal ? signalNumber(r.signal) : 0) };
      },
    });
    this.#helper = new CheckpointHelper({
      client: parts.client,
      sandboxId: parts.id,
      image: parts.config.helperImage,
      pull: parts.helperPull,
      labels: parts.objectLabels,
      skills: Boolean(parts.config.skillsDir),
      context: this.#target.context,
      manifestKey: parts.checkpointKey,
      frozen: (fn) => this.#frozen(fn),
    });
    this.checkpoints = this.#helper.store;
    this.sessions = new SessionPool({
      // The sessions' shells start like any plain exec: as the sandbox user, in the container,
      // Tty false (stdout and stderr demultiplexed apart), stdin half-closed on end().
      startProcess: (req, signal) => this.startPlain(req, signal),
      openShell: () => this.#openShell(),
      runnerPrograms: () => this.#runnerPrograms,
      signalGroup: (pgid, signal) =>
        killInContainer(
          this.#target,
          parts.user,
          signal,
          pgid,
          [...this.#shells].flatMap((shell) => shell.pipeSet ?? []),
        ),
      context: this.#target.context,
      enabled: parts.config.fastPath,
    });
    if (parts.egress) {
      const log = new EgressDenialLog({
        sandboxId: parts.id,
        logFile: parts.config.egressLog ?? join(homedir(), '.agentbox', 'egress-denied.log'),
        onDenied: parts.config.onEgressDenied,
      });
      this.#denials = log;
      this.#following = followSentinel(parts.client, parts.id, log, parts.egressSince).catch(() => undefined);
    }
  }

  /**
   * The latest denied egress attempts (network allowlist only; the log file has them all): what
   * the sentinel on the gateway address heard, a moment after the sandbox dialled it.
   */
  get egressDenials(): readonly EgressDenial[] {
    return this.#denials?.denials ?? [];
  }

  /** Settles once every denied attempt heard so far is in the egress log file. */
  async egressLogged(): Promise<void> {
    await this.#denials?.flushed();
  }

  /** @internal The Docker client this sandbox uses (for tests and tools); not in the published types. */
  get docker(): Docker {
    return this.#parts.client.docker;
  }

  protected startProcess(req: StartRequest, signal: AbortSignal | undefined): Promise<RawProcess> {
    return this.sessions.startProcess(req, signal);
  }

  /** @internal The plain exec path: one docker exec per command, under the process-group wrapper. */
  async startPlain(req: StartRequest, signal: AbortSignal | undefined): Promise<WrappedProcess> {
    // Its wrapper lives as long as the command: it runs from the hidden copies too, where they run.
    const installed = await this.#hiddenShell();
    const hidden = installed.kind === 'hidden' ? installed.programs : undefined;
    return startWrapped(
      {
        target: this.#target,
        user: this.#parts.user,
        setsid: hidden?.setsid ?? this.#parts.setsid,
        shell: hidden?.sh,
        env: hidden?.env,
        nonce: this.#nonce,
      },
      req,
      signal,
    );
  }

  /** The sessions' hidden shell (hidden-shell.ts), installed before the first session opens. */
  #hiddenShell(): Promise<HiddenShell> {
    this.#hidden ??= installHiddenShell(
      this.#target,
      this.#parts.setsid,
      this.#parts.uid,
      this.#parts.user,
      (probe) =>
        daemonFacts.runsExecuteOnly(
          this.#parts.client.address,
          this.#parts.info.Image,
          this.runtime,
          this.#parts.user,
          probe,
        ),
      this.#parts.installed,
    ).then((shell) => {
      if (shell.kind === 'hidden') this.#runnerPrograms = shell.programs;
      return shell;
    });
    return this.#hidden;
  }

  async #openShell(): Promise<RawProcess> {
    const installed = await this.#hiddenShell();
    // The pool turns the fast path off for good on UnsupportedError.
    if (installed.kind === 'none') throw new UnsupportedError(installed.reason, this.#target.context);
    const hidden = installed.kind === 'hidden' ? installed.programs : undefined;
    const shell = await startWrapped(
      {
        target: this.#target,
        user: this.#parts.user,
        setsid: hidden?.setsid ?? this.#parts.setsid,
        shell: hidden?.sh,
        nonce: this.#nonce,
      },
      { argv: [hidden?.sh ?? 'sh'], cwd: '/', env: {} },
      undefined,
    );
    this.#shells.add(shell);
    void shell.exit.finally(() => this.#shells.delete(shell)).catch(() => {});
    return shell;
  }

  /**
   * Run `fn` (a checkpoint or a restore by the helper) with the container paused: no sandbox
   * process runs while the tree is read or rewritten, so none can swap a path for a symlink
   * under the helper or change what it copies. Execs and file transfers wait at the gate.
   */
  #frozen<T>(fn: () => Promise<T>): Promise<T> {
    const { container } = this.#parts;
    const context = { ...this.#target.context, operation: 'checkpoint' };
    // Ungated: the gate is held here. Every process the sandbox user may signal, bar pid 1 and itself.
    const signalAll = (signal: 'STOP' | 'CONT') =>
      runExec(
        { container, context },
        { argv: ['/bin/sh', '-c', `kill -${signal} -1 2>/dev/null; exit 0`], user: this.#parts.user },
      );
    // False: no pause of ours (Docker said "already paused", or the freezer failed and thawed).
    // Thrown: the pause may have happened all the same.
    const pause = async () => {
      this.#mayBePaused = true;
      const paused = await freeze(container, context);
      this.#mayBePaused = paused;
      return paused;
    };
    return this.#gate.exclusive(async () => {
      let stopped = false;
      if (this.#mayBePaused) {
        await resume(container, context);
        this.#mayBePaused = false;
      }
      if (!(await pause())) {
        // The freezer can lose the race against processes forking in a tight loop: stop
        // them first (a stopped process cannot fork), then freeze.
        await signalAll('STOP');
        stopped = true;
        if (!(await pause())) {
          await signalAll('CONT').catch(() => {});
          throw new SandboxUnavailableError(
            'the sandbox container could not be paused for the checkpoint; nothing was read or restored',
            context,
          );
        }
      }
      try {
        return await fn();
      } finally {
        await resume(container, context);
        this.#mayBePaused = false;
        if (stopped) await signalAll('CONT');
      }
    });
  }

  protected override oomKillSeen(): Promise<boolean> {
    return this.#oomKills.seen();
  }

  protected readFileAt(path: string, maxBytes: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    return this.#files.read(path, maxBytes, signal);
  }

  protected writeFileAt(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
    signal: AbortSignal | undefined,
    size: number | undefined,
  ): Promise<void> {
    return this.#files.write(path, data, mode, signal, size);
  }

  protected async closeResources(): Promise<void> {
    // First: it kills what still runs on the sessions and ends their shells.
    await this.sessions.close();
    (await this.#following)?.();
    await this.#denials?.flushed();
    // This process's shell in the helper ends either way; a kept sandbox keeps the helper.
    await this.#helper.detach();
    if (this.#parts.config.keep) return;
    await removeSandbox(this.#parts.client, this.id, this.#target.context);
  }
}

/** Driver options of a workspace volume limited to `mib`: a tmpfs of that size (memory-backed). */
function workspaceQuota(mib: number, owner: { uid: string; gid: string }): Record<string, string> {
  // The archive API does not chown a volume's root: the tmpfs is mounted owned by the sandbox user.
  return { type: 'tmpfs', device: 'tmpfs', o: `size=${mib}m,mode=0755,uid=${owner.uid},gid=${owner.gid}` };
}

/** uid and gid of a numeric `uid[:gid]` user, as a quota volume needs them before the container runs. */
function numericOwner(user: string, context: ErrorContext): { uid: string; gid: string } {
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m)
    throw new InvalidArgumentError(`limits.diskMiB needs config.user as uid:gid (numbers), not ${user}`, {
      ...context,
      issues: ['config.user: must be numeric uid:gid when policy.limits.diskMiB is set'],
    });
  return { uid: m[1]!, gid: m[2] ?? m[1]! };
}

/** The workspace volume's driver options, as the daemon keeps them (for the enforcement report). */
async function inspectWorkspace(
  client: DockerClient,
  id: string,
): Promise<{ options: Record<string, string> } | undefined> {
  const info = await client.docker
    .getVolume(names.volume(id, 'workspace'))
    .inspect()
    .catch(() => undefined);
  return info ? { options: (info.Options as Record<string, string> | null) ?? {} } : undefined;
}

/** Remove everything of sandbox `id`, found by label: its containers first, then its networks and volumes. */
export async function removeSandbox(client: DockerClient, id: string, context: ErrorContext): Promise<void> {
  const { docker } = client;
  const filters = labelFilter(id);
  const gone = (error: unknown) => {
    if (statusOf(error) !== 404) throw dockerError(error, context, client.address);
  };
  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(
    containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(gone)),
  );
  const networks = await docker.listNetworks({ filters });
  await Promise.all(networks.map((n) => docker.getNetwork(n.Id).remove().catch(gone)));
  const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
  await Promise.all(volumes.map((v) => docker.getVolume(v.Name).remove().catch(gone)));
}

/** Open (or re-attach to) a docker sandbox. Cleans up after itself if aborted or failing halfway. */
export async function openDockerSandbox(ctx: OpenContext<DockerResolvedConfig>): Promise<DockerSandbox> {
  const context: ErrorContext = { backend: 'docker', operation: 'open', sandboxId: ctx.id };
  const checkAbort = () => {
    if (ctx.signal?.aborted) throw new AbortedError('open aborted', { ...context, cause: ctx.signal.reason });
  };
  checkAbort();
  const hardening = hardeningFor(ctx.policy);
  // DOCKER_HOST (and its TLS and ssh companions) is read once, here, never in the middle of an operation.
  const client = connectDocker(ctx.config.docker, dockerEnv(), context);
  await daemonFacts.ping(client.address, () =>
    pingDaemon(client, Math.min(ctx.config.docker.requestTimeoutMs, 10_000), context),
  );
  checkAbort();

  if (ctx.idGiven) {
    const existing = await client.docker
      .getContainer(names.container(ctx.id))
      .inspect()
      .catch((error) => {
        if (statusOf(error) === 404) return undefined;
        throw dockerError(error, context, client.address);
      });
    if (existing) return reattach(ctx, client, hardening, existing, context);
  }

  if (hardening.network.mode === 'allowlist') EgressAllowlist.validate(hardening.network.allow, context);
  // Refused before anything is created (the report after open would say the same).
  if (ctx.strict && hardening.secrets)
    throw new PolicyNotEnforceableError(
      'the docker backend cannot enforce: secrets (its egress forwarders relay bytes without reading them, so no placeholder can be swapped; use the local backend with isolation bwrap, or ssh)',
      { secrets: 'not supported by the docker backend' },
      context,
    );
  const daemon = ctx.config.runtime ? await daemonRuntimes(client) : undefined;
  if (daemon) checkRuntime(ctx.config.runtime, daemon, hardening.network.mode, ctx.strict, context);
  // Not strict and not registered: the daemon's default, reported as such in `isolation`.
  const runtime =
    ctx.config.runtime && daemon?.runtimes.has(ctx.config.runtime) ? ctx.config.runtime : undefined;
  const pulled = (field: ImageField) =>
    ensureImage(
      client,
      ctx.config[field],
      { pull: ctx.config.pull, field, onProgress: ctx.onProgress, signal: ctx.signal },
      context,
    );
  // Inspected once per daemon and image (or pulled every time, with pull: 'always').
  const sandboxImage = () =>
    ctx.config.pull === 'always'
      ? pulled('image')
      : daemonFacts.image(client.address, ctx.config.image, () => pulled('image'));
  await sandboxImage();
  checkAbort();
  // The forwarders start during open; the checkpoint helper only at the first checkpoint.
  const helperReady = hardening.network.mode === 'allowlist' || ctx.config.helperImage === ctx.config.image;
  if (hardening.network.mode === 'allowlist' && ctx.config.helperImage !== ctx.config.image) {
    await pulled('helperImage');
    checkAbort();
  }
  const objectLabels = { ...hardening.labels, [LABEL.owner]: ctx.config.owner ?? defaultOwner() };

  const createdAt = new Date().toISOString();
  const nonRoot = hardening.nonRootUser;
  const user = ctx.config.user ?? (nonRoot ? '1000:1000' : '0:0');
  const workdir = ctx.config.workdir;
  const skillsDir = ctx.config.skillsDir;
  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    const volume = async (role: 'workspace' | 'skills') => {
      const name = names.volume(ctx.id, role);
      await client.docker.createVolume({
        Name: name,
        Labels: labelsFor(ctx.id, role, createdAt, objectLabels),
        // The quota: a size-limited tmpfs (this daemon's local driver has no size option on disk).
        ...(role === 'workspace' && hardening.diskMiB !== undefined
          ? { DriverOpts: workspaceQuota(hardening.diskMiB, numericOwner(user, context)) }
          : {}),
      });
      cleanup.push(() => client.docker.getVolume(name).remove());
      return name;
    };
    const workspaceVolume = await volume('workspace');
    checkAbort();
    const mounts: Docker.MountConfig = [{ Type: 'volume', Source: workspaceVolume, Target: workdir }];
    if (skillsDir) mounts.push({ Type: 'volume', Source: await volume('skills'), Target: skillsDir });
    checkAbort();

    let egress: EgressAllowlist | undefined;
    let networkMode = 'none';
    if (hardening.network.mode === 'allowlist') {
      egress = egressFor(ctx, client, hardening.network.allow, objectLabels, createdAt, context);
      cleanup.push(() => removeSandbox(client, ctx.id, context));
      await egress.create();
      networkMode = egress.networkName;
      checkAbort();
    } else if (hardening.network.mode === 'open') {
      networkMode = 'bridge';
    }

    const labels = {
      ...labelsFor(ctx.id, 'sandbox', createdAt, objectLabels),
      [META.workdir]: workdir,
      [META.user]: user,
      [META.skills]: skillsDir || '',
      [META.checkpointKey]: randomBytes(32).toString('hex'),
    };
    const create = () =>
      client.docker.createContainer({
        name: names.container(ctx.id),
        Image: ctx.config.image,
        Cmd: HIDDEN_SHELL_INIT,
        Entrypoint: [],
        // PID 1 installs the hidden shell; every exec names the sandbox user itself.
        User: HIDDEN_SHELL_INIT_USER,
        WorkingDir: workdir,
        Env: [],
        Labels: labels,
        HostConfig: {
          ...hostConfigFor(hardening, mounts, networkMode, runtime === GVISOR),
          ...(runtime ? { Runtime: runtime } : {}),
          ...(egress
            ? {
                // Allowed names resolve to their forwarders; nothing else resolves (the embedded
                // DNS forwards to nowhere) and IPv6 link-local cannot reach the host.
                ExtraHosts: egress.extraHosts,
                Dns: ['127.0.0.1'],
                Sysctls: {
                  'net.ipv6.conf.all.disable_ipv6': '1',
                  // The egress sentinel's listener binds the allowed ports (low ones too) in this
                  // namespace, where every address off the network is local: pings go unanswered.
                  // No sentinel under gVisor (see below).
                  ...(runtime === GVISOR
                    ? {}
                    : { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.icmp_echo_ignore_all': '1' }),
                },
              }
            : {}),
        },
      });
    const container = await create().catch(async (error) => {
      // The image was known to be there, but is gone: ensure it again (pull or a clear error).
      if (statusOf(error) !== 404) throw error;
      daemonFacts.forgetImage(client.address, ctx.config.image);
      await sandboxImage();
      return create();
    });
    cleanup.push(() => container.remove({ force: true }));
    checkAbort();
    const installed = await hiddenShellAnnounced(container);
    await startContainer(container, context);
    // gVisor's network stack does not see the sentinel's routes: it would hear nothing there.
    if (egress && runtime !== GVISOR) await egress.startSentinel(container.id);
    // What the daemon gave the container (the enforcement report reads it), and the image it runs.
    const info = await container.inspect();
    // Who commands run as and the image's tools, asked once per image and user.
    const probed = daemonFacts.probe(client.address, info.Image, user, () =>
      probeUser(container, user, ctx.config.image, context),
    );
    const [probe, network, workspace] = await Promise.all([
      probed,
      egress?.observe(),
      hardening.diskMiB === undefined ? undefined : inspectWorkspace(client, ctx.id),
    ]);
    checkAbort();
    const observed = {
      uid: probe.uid,
      gid: probe.gid,
      network,
      workspace,
      manifestsAuthenticated: true,
      runtime: { requested: ctx.config.runtime, daemon },
    };
    const parts: SandboxParts = {
      id: ctx.id,
      client,
      container,
      info,
      hardening,
      config: ctx.config,
      user,
      workdir,
      uid: probe.uid,
      gid: probe.gid,
      setsid: probe.setsid,
      egress,
      egressSince: 0,
      checkpointKey: labels[META.checkpointKey],
      objectLabels,
      helperPull: helperReady && ctx.config.pull === 'always' ? 'missing' : ctx.config.pull,
      installed,
    };
    const enforcement = readEnforcement(hardening, info, observed);
    assertRuntime(ctx, enforcement, context);
    const sandbox = new DockerSandbox(parts, enforcement);
    cleanup.push(() => sandbox.sessions.close());
    checkAbort();
    const warmed = sandbox.sessions.warm();
    warmed.catch(() => {});
    // Volume roots belong to the sandbox user whatever the image has at those paths. Each archive
    // call holds the container's lock for ~40 ms, and an exec created meanwhile waits: the
    // session's exec goes first (a few ms), then the roots are handed over while it starts.
    await delay(5);
    const chowned = Promise.all(
      [workdir, ...(skillsDir ? [skillsDir] : [])].map((dir) =>
        chownDir(container, dir, probe.uid, probe.gid, context),
      ),
    );
    await Promise.all([chowned, warmed]);
    checkAbort();
    return sandbox;
  } catch (error) {
    // Undo in reverse order; the sessions end first, the containers before the volumes and network they use.
    for (const undo of cleanup.reverse()) await undo().catch(() => {});
    throw dockerError(error, context, client.address);
  }
}

/** The allowlist forwarders of a sandbox, as open and re-attach both describe them. */
function egressFor(
  ctx: OpenContext<DockerResolvedConfig>,
  client: DockerClient,
  allow: readonly string[],
  labels: Record<string, string>,
  createdAt: string,
  context: ErrorContext,
): EgressAllowlist {
  return new EgressAllowlist({
    client,
    sandboxId: ctx.id,
    allow,
    image: ctx.config.helperImage,
    egressNetwork: ctx.config.egressNetwork,
    labels,
    createdAt,
    context,
  });
}

async function reattach(
  ctx: OpenContext<DockerResolvedConfig>,
  client: DockerClient,
  hardening: Hardening,
  existing: Docker.ContainerInspectInfo,
  context: ErrorContext,
): Promise<DockerSandbox> {
  const labels = existing.Config.Labels ?? {};
  if (labels[LABEL.creator] !== 'agentbox' || labels[LABEL.sandboxId] !== ctx.id)
    throw new InvalidArgumentError(
      `a container named ${names.container(ctx.id)} exists but was not created by agentbox for sandbox ${ctx.id}`,
      { ...context, issues: ['id: in use by a container agentbox did not create'] },
    );
  const container = client.docker.getContainer(existing.Id);
  const user = labels[META.user] ?? existing.Config.User ?? '1000:1000';
  const workdir = labels[META.workdir] ?? existing.Config.WorkingDir ?? ctx.config.workdir;
  // A process that died mid-checkpoint leaves the container paused: it resumes here.
  if (existing.State.Paused) await resume(container, context);
  const probe = await startAndProbe(
    container,
    user,
    existing.Config.Image,
    context,
    existing.State.Running,
  ).catch(async (error: unknown) => {
    // A pause that raced an exec's exit can show only after the inspect above (seen under load:
    // containerd still "pausing"): resume it and ask once more.
    if (!(error instanceof SandboxUnavailableError && /is paused/.test(error.message))) throw error;
    await resume(container, context);
    return probeUser(container, user, existing.Config.Image, context);
  });
  const info = await container.inspect();
  const containerRuntime = (info.HostConfig as { Runtime?: string }).Runtime;
  const daemon =
    ctx.config.runtime || (containerRuntime && containerRuntime !== 'runc')
      ? await daemonRuntimes(client)
      : undefined;
  let egress: EgressAllowlist | undefined;
  if (hardening.network.mode === 'allowlist') {
    const createdAt = labels[LABEL.created] ?? new Date().toISOString();
    egress = egressFor(
      ctx,
      client,
      hardening.network.allow,
      ownLabels(labels, hardening),
      createdAt,
      context,
    );
  }
  const config: DockerResolvedConfig = { ...ctx.config, workdir, skillsDir: labels[META.skills] || false };
  const parts: SandboxParts = {
    id: ctx.id,
    client,
    container,
    info,
    hardening,
    config,
    user,
    workdir,
    uid: probe.uid,
    gid: probe.gid,
    setsid: probe.setsid,
    egress,
    egressSince: Math.floor(Date.now() / 1000),
    checkpointKey: labels[META.checkpointKey] || undefined,
    objectLabels: ownLabels(labels, hardening),
    helperPull: ctx.config.pull,
  };
  const observed = {
    uid: probe.uid,
    gid: probe.gid,
    network: await egress?.observe(),
    workspace: await inspectWorkspace(client, ctx.id),
    manifestsAuthenticated: Boolean(parts.checkpointKey),
    runtime: { requested: ctx.config.runtime, daemon },
  };
  const enforcement = readEnforcement(hardening, info, observed);
  assertRuntime(ctx, enforcement, context);
  const sandbox = new DockerSandbox(parts, enforcement);
  await sandbox.sessions.warm();
  return sandbox;
}

/**
 * `config.runtime` is requested like a policy control: in strict mode the container must run
 * under it, as read back from the daemon (checkRuntime refused the network before open).
 */
function assertRuntime(
  ctx: OpenContext<DockerResolvedConfig>,
  report: EnforcementReport,
  context: ErrorContext,
): void {
  if (!ctx.strict || ctx.config.runtime === undefined || report.isolation.status === 'enforced') return;
  throw new PolicyNotEnforceableError(
    `the docker backend cannot give runtime ${ctx.config.runtime}: ${report.isolation.detail}`,
    { isolation: report.isolation.detail },
    { ...context, operation: 'open' },
  );
}

/** The policy labels of a re-attached sandbox, with the owner it was created with (none before owners existed). */
function ownLabels(labels: Record<string, string>, hardening: Hardening): Record<string, string> {
  const owner = labels[LABEL.owner];
  return owner === undefined ? { ...hardening.labels } : { ...hardening.labels, [LABEL.owner]: owner };
}

/**
 * Start the container if needed; learn who commands run as and where `setsid` is, and check
 * that the image has every tool the backend runs in it (a typed error naming what is missing).
 */
async function startAndProbe(
  container: Docker.Container,
  user: string,
  image: string,
  context: ErrorContext,
  running = false,
): Promise<ProbedUser> {
  if (!running) await startContainer(container, context);
  return probeUser(container, user, image, context);
}

/** Start the container (one already running is fine). */
async function startContainer(container: Docker.Container, context: ErrorContext): Promise<void> {
  try {
    await container.start();
  } catch (error) {
    if (statusOf(error) !== 304) throw dockerError(error, context);
  }
}

/** Ask the running container who commands run as and where setsid is; check its tools. */
async function probeUser(
  container: Docker.Container,
  user: string,
  image: string,
  context: ErrorContext,
): Promise<ProbedUser> {
  const r = await runExec(
    { container, context },
    { argv: ['/bin/sh', '-c', PROBE, 'agentbox-probe', ...SANDBOX_TOOLS], user },
  );
  const stdout = r.stdout.toString('utf8');
  const tools = parseToolsProbe(stdout);
  if (!tools) {
    const said = `${stdout}${r.stderr.toString('utf8')}`.trim().slice(0, 500);
    // runc could not start /bin/sh: the image has none (or it cannot run here).
    if (r.exitCode === 126 || r.exitCode === 127)
      throw missingToolsError(image, 'image', ['/bin/sh'], context);
    throw new SandboxUnavailableError(
      `the sandbox container did not answer its first command (exit ${r.exitCode}${said ? `: ${said}` : ''})`,
      context,
    );
  }
  const missing = [...(tools.setsid ? [] : ['setsid']), ...tools.missing];
  if (missing.length > 0) throw missingToolsError(image, 'image', missing, context);
  const ids = /^uid (\d+)\ngid (\d+)$/m.exec(stdout);
  if (!ids)
    throw new SandboxUnavailableError(
      `the sandbox container could not say who commands run as (id -u, id -g answered: ${stdout.split('\n').slice(0, 2).join('; ')})`,
      context,
    );
  return { uid: Number(ids[1]), gid: Number(ids[2]), setsid: tools.setsid };
}

/** Make a (volume) directory belong to uid:gid, through the archive API (no capability needed in the container). */
async function chownDir(
  container: Docker.Container,
  dir: string,
  uid: number,
  gid: number,
  context: ErrorContext,
) {
  const pack = tar.pack();
  pack.entry({ name: './', type: 'directory', mode: 0o755, uid, gid, mtime: new Date() });
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  try {
    await container.putArchive(Buffer.concat(chunks), { path: dir });
  } catch (error) {
    throw dockerError(error, context);
  }
}
