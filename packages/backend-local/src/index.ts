/**
 * The local backend: a working directory on this machine.
 *
 * `isolation: 'none'` (the default, asked for by name) isolates nothing: commands run as the
 * current user with the host's filesystem, processes and network, so a command can read
 * everything that user can, including this library's own environment through
 * /proc/<pid>/environ, other sandboxes and the checkpoint store. The enforcement report says
 * so, and a strict policy that asks for any isolation control refuses to open it.
 *
 * `isolation: 'bwrap'` runs every command in a bubblewrap jail (jail.ts).
 */
import { createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  type ControlStatus,
  type EnforcementReport,
  IsADirectoryError,
  NotFoundError,
  OutputLimitError,
  type ParsedPolicy,
  PolicySchema,
  SandboxUnavailableError,
} from '@agentbox/core';
import {
  assertEnforced,
  BaseSandbox,
  type CheckpointStore,
  defineBackend,
  EGRESS_TRUST_DIR,
  type EgressDenial,
  type EgressEntry,
  enforcementReport,
  frozenCheckpointStore,
  type HostProcess,
  loadSecrets,
  loadTlsTermination,
  OomKillCounter,
  type OpenContext,
  parseEgressAllowlist,
  type RawProcess,
  registerBackend,
  type SecretBinding,
  type StartRequest,
  secretEnv,
  secretsStatus,
  startHostProcess,
  TreeCheckpointStore,
  tlsTrustEnv,
} from '@agentbox/core/backend';
import { z } from 'zod';
import { doctorLocal } from './doctor.js';
import { LocalEgress, writeEgressFiles } from './egress.js';
import { findJailTools, hostPids, Jail, jailCommand, outputPipes, signalHolders } from './jail.js';
import { type CgroupLayout, cgroupLayout, JailCgroup } from './jail-cgroup.js';
import { LABELS_FILE, sweepLocal } from './sweep.js';

export { Jail } from './jail.js';

export const LocalConfigSchema = z.strictObject({
  /** Directory under which each sandbox gets `<id>/workspace` and `<id>/checkpoints`. */
  root: z.string().min(1).default(join(tmpdir(), 'agentbox-local')),
  /** Keep the sandbox directory on close (to re-attach later by id). */
  keep: z.boolean().default(false),
  /**
   * `none`: commands run directly on the host and can read everything the library's user can,
   * its environment included. `bwrap`: each sandbox in a bubblewrap jail (own mount, PID, user,
   * IPC, UTS and network namespaces; read-only system directories, the workspace the only
   * writable host directory, a private /tmp; no host environment).
   */
  isolation: z.enum(['none', 'bwrap']).default('none'),
  /** The bubblewrap program (a path, or a name looked up on PATH). */
  bwrap: z.string().min(1).default('bwrap'),
  /**
   * With a network allowlist (isolation 'bwrap'): the file each denied egress attempt is
   * appended to, one JSON line each (time, sandboxId, protocol, destination). Default
   * `<root>/egress-denied.log`, which outlives the sandbox.
   */
  egressLog: z.string().min(1).optional(),
  /** Called with each denied egress attempt too (the sandbox's `egressDenials` keeps the latest). */
  onEgressDenied: z.custom<(denial: EgressDenial) => void>((v) => typeof v === 'function').optional(),
});
/** What a user writes as `config` for the local backend: every field has a default. */
export type LocalConfig = z.input<typeof LocalConfigSchema>;
/** The config as the backend sees it: parsed, every default filled in. */
export type LocalResolvedConfig = z.output<typeof LocalConfigSchema>;

const NOT_ISOLATED = {
  status: 'not-supported',
  detail:
    "isolation 'none': commands run directly on the host as the library's user and can read everything it can, this process's environment included (/proc/<pid>/environ); use isolation 'bwrap'",
} as const;

/** The bwrap jail's limits, each by its cgroup, or why there are none. */
function jailLimits(
  policy: ParsedPolicy,
  layout: CgroupLayout | string,
): Record<LimitControl, ControlStatus> {
  const controls = [
    ['limits.pids', policy.limits?.pids, (v: number) => `at most ${v} processes (cgroup pids.max)`],
    [
      'limits.memoryMiB',
      policy.limits?.memoryMiB,
      (v: number) => `memory limit ${v} MiB, no extra swap (cgroup); an OOM kill sets oomKilled`,
    ],
    ['limits.cpus', policy.limits?.cpus, (v: number) => `${v} CPUs (cgroup CFS quota)`],
  ] as const;
  const out = {} as Record<LimitControl, ControlStatus>;
  for (const [control, value, detail] of controls) {
    const where = typeof layout === 'string' ? '' : ` in a cgroup v${layout.version} group of its own`;
    out[control] =
      typeof layout === 'string'
        ? {
            status: 'not-supported',
            detail: `bubblewrap sets no limits, and no cgroup can be made: ${layout}`,
          }
        : value === undefined
          ? { status: 'not-requested', detail: 'no limit requested (a cgroup could set one here)' }
          : { status: 'enforced', detail: `${detail(value)}${where}` };
  }
  return out;
}

type LimitControl = 'limits.pids' | 'limits.memoryMiB' | 'limits.cpus';

/** What the local backend enforces in the mode the config asks for. */
export function localEnforcement(
  config: LocalResolvedConfig,
  policy: ParsedPolicy,
  layout: CgroupLayout | string = config.isolation === 'bwrap' ? cgroupLayout() : 'not isolated',
): EnforcementReport {
  const isRoot = process.getuid?.() === 0;
  const nonRootUser: ControlStatus = isRoot
    ? { status: 'not-supported', detail: 'this process runs as root, so commands do too' }
    : { status: 'enforced', detail: `commands run as uid ${process.getuid?.()}` };
  const labels: ControlStatus =
    policy.labels && Object.keys(policy.labels).length
      ? { status: 'enforced', detail: `kept in the sandbox directory's ${LABELS_FILE}, which sweep reads` }
      : { status: 'not-requested', detail: 'none requested' };
  if (config.isolation === 'none')
    return enforcementReport(NOT_ISOLATED, {
      nonRootUser,
      labels,
      network: { status: 'not-supported', detail: 'commands share the host network' },
      secrets: secretsStatus(
        policy.secrets,
        "isolation 'none': commands share the host network, so no relay sees their requests",
      ),
      checkpointIntegrity: {
        status: 'not-supported',
        detail: 'the checkpoint store is on the host, writable by commands (they run as the same user)',
      },
    });
  const no = (detail: string): ControlStatus => ({ status: 'not-supported', detail });
  const on = (detail: string): ControlStatus => ({ status: 'enforced', detail });
  const net = policy.network?.mode;
  return enforcementReport(no('not applicable'), {
    isolation: on(
      "bubblewrap: own user, mount, PID, IPC and UTS namespaces; only this sandbox's workspace of the host is visible; no host environment",
    ),
    readOnlyRoot: on(
      'host system directories (/usr, /etc, /lib...) read-only; writable: the workspace, /tmp, writable mounts',
    ),
    tmp: no('a private /tmp (tmpfs, nosuid, nodev), but bubblewrap sets neither its size nor noexec'),
    ...jailLimits(policy, layout),
    'limits.diskMiB': no(
      'the workspace is a host directory bound into the jail: bubblewrap sets no quota on it',
    ),
    dropCapabilities: on("bubblewrap drops every capability of the sandbox's processes"),
    noNewPrivileges: on('bubblewrap sets no_new_privs on every command'),
    nonRootUser,
    mounts: policy.mounts?.length
      ? on('bind mounts into the jail')
      : { status: 'not-requested', detail: 'none requested' },
    credentials: policy.credentials?.length
      ? on('read-only bind mounts into the jail')
      : { status: 'not-requested', detail: 'none requested' },
    network:
      net === 'open'
        ? { status: 'not-requested', detail: 'open: commands share the host network' }
        : net === 'allowlist'
          ? on(
              `own network namespace with only loopback; a forwarder outside the sandbox's view relays only ${policy.network?.mode === 'allowlist' ? policy.network.allow.join(', ') : ''}, dialled from this machine; DNS answers only those names; denied attempts logged`,
            )
          : on('own network namespace with only a loopback interface'),
    secrets: secretsStatus(
      policy.secrets,
      net === 'allowlist'
        ? 'allowlist'
        : 'needs network mode allowlist: the egress relay is what swaps in the values',
      { terminatesTls: true },
    ),
    labels,
    checkpointIntegrity: on(
      'the store is outside everything the jail shows; checkpoints and rollbacks run with every process of the sandbox stopped; manifests are validated and objects hash-checked before a restore',
    ),
  });
}

export class LocalSandbox extends BaseSandbox {
  protected readonly checkpoints: CheckpointStore;
  readonly #dir: string;
  readonly #keep: boolean;
  readonly #jail: Jail | undefined;
  readonly #egress: LocalEgress | undefined;
  readonly #cgroup: JailCgroup | undefined;
  readonly #oomKills: OomKillCounter | undefined;
  readonly #running = new Set<HostProcess>();
  /** Settles when the current freeze ends: no command starts while the tree is frozen. */
  #thawed: Promise<unknown> = Promise.resolve();

  constructor(init: {
    id: string;
    dir: string;
    keep: boolean;
    enforcement: EnforcementReport;
    jail?: Jail | undefined;
    egress?: LocalEgress | undefined;
    /** Placeholders of policy.secrets, in every command's environment. */
    secrets?: readonly SecretBinding[] | undefined;
    /** With TLS termination: the variables that point clients at the sandbox's CA. */
    trustEnv?: Record<string, string> | undefined;
    cgroup?: JailCgroup | undefined;
  }) {
    const isRoot = process.getuid?.() === 0;
    const { id, dir } = init;
    super({
      kind: 'local',
      id,
      workdir: join(dir, 'workspace'),
      capabilities: {
        isolation: init.jail ? 'container' : 'none',
        checkpoints: true,
        spawn: true,
        stdin: true,
        kill: true,
        nonRootUser: !isRoot,
        networkPolicy: init.jail !== undefined,
        reattach: true,
        unsupported: {
          ...(init.jail ? {} : { networkPolicy: 'commands share the host network' }),
          ...(isRoot ? { nonRootUser: 'this process runs as root, so commands do too' } : {}),
        },
      },
      enforcement: init.enforcement,
      baseEnv: { ...secretEnv(init.secrets ?? []), ...init.trustEnv },
    });
    this.#dir = dir;
    this.#keep = init.keep;
    this.#jail = init.jail;
    this.#egress = init.egress;
    this.#cgroup = init.cgroup;
    const cgroup = init.cgroup;
    this.#oomKills = cgroup ? new OomKillCounter(() => cgroup.oomKills()) : undefined;
    // The store lives beside the workspace, outside everything the jail shows.
    const store = new TreeCheckpointStore({ root: this.workdir, storeDir: join(dir, 'checkpoints') });
    const jail = init.jail;
    this.checkpoints = jail
      ? frozenCheckpointStore(store, (fn) => {
          const run = this.#thawed.then(() => jail.frozen(fn));
          this.#thawed = run.catch(() => {});
          return run;
        })
      : store;
  }

  /** The latest denied egress attempts (network allowlist only; the log file has them all). */
  get egressDenials(): readonly EgressDenial[] {
    return this.#egress?.relay.denials ?? [];
  }

  /** Settles once every denied attempt heard so far is in the egress log file. */
  async egressLogged(): Promise<void> {
    await this.#egress?.relay.flushed();
  }

  /** The bubblewrap jail (isolation 'bwrap'), for tests and diagnostics. */
  get jail(): Jail | undefined {
    return this.#jail;
  }

  protected async startProcess(req: StartRequest): Promise<RawProcess> {
    const jail = this.#jail;
    let proc: HostProcess;
    if (jail) {
      // The workspace itself is the same directory on both sides; any other path (a symlink in
      // the workspace included) only the jail can resolve.
      const isDir =
        req.cwd === this.workdir
          ? await fs.stat(req.cwd).then(
              (st) => st.isDirectory(),
              () => false,
            )
          : await jail.isDirectory(req.cwd);
      if (!isDir)
        throw new NotFoundError(
          `working directory ${req.cwd} does not exist: create it first, or pass another cwd`,
          {
            subject: req.cwd,
          },
        );
      await this.#thawed;
      proc = jailCommand(jail, req, startHostProcess);
    } else proc = startHostProcess(req);
    // A process that leaves the group but keeps the output is still the command's: kills reach it
    // (in the jail, among its processes; without one, among the host's).
    const started = proc;
    const pipes = outputPipes(started.pid);
    proc = {
      ...started,
      pid: started.pid,
      async kill(signal) {
        await started.kill(signal);
        if (jail) jail.signalHolders(pipes, signal);
        else signalHolders(pipes, signal, hostPids());
      },
    };
    this.#running.add(proc);
    void proc.exit.then(() => this.#running.delete(proc));
    return proc;
  }

  protected override async oomKillSeen(): Promise<boolean> {
    return this.#oomKills?.seen() ?? false;
  }

  protected async readFileAt(
    path: string,
    maxBytes: number,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    if (this.#jail) return this.#jail.readFile(path, maxBytes, signal);
    const st = await fs.stat(path);
    if (st.isDirectory()) throw new IsADirectoryError(`${path} is a directory`);
    if (st.size > maxBytes)
      throw new OutputLimitError(
        `${path} is ${st.size} bytes, over the ${maxBytes}-byte read limit`,
        maxBytes,
        st.size,
      );
    return fs.readFile(path);
  }

  protected async writeFileAt(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (this.#jail) return this.#jail.writeFile(path, data, mode, signal);
    await fs.mkdir(dirname(path), { recursive: true });
    await pipeline(data, createWriteStream(path, { mode: mode ?? 0o644 }), { signal });
    if (mode !== undefined) await fs.chmod(path, mode);
  }

  protected async closeResources(): Promise<void> {
    await Promise.all([...this.#running].map((proc) => proc.kill('SIGKILL').catch(() => {})));
    // Ending the jail ends every process still in it, those that left their group included.
    await this.#jail?.close();
    await this.#cgroup?.remove();
    await this.#egress?.close();
    if (!this.#keep) await fs.rm(this.#dir, { recursive: true, force: true });
  }
}

async function openLocal({ id, idGiven, config, policy, strict, signal }: OpenContext<LocalResolvedConfig>) {
  const context = { backend: 'local', operation: 'open', sandboxId: id };
  // Errors of later operations name their own (BaseSandbox fills it in).
  const jailContext = { backend: 'local', sandboxId: id };
  const root = resolve(config.root);
  const dir = join(root, id);
  const workdir = join(dir, 'workspace');
  const layout = config.isolation === 'bwrap' ? cgroupLayout() : 'not isolated';
  const enforcement = localEnforcement(config, policy, layout);
  // Refuse before creating anything, so a refused open leaves nothing behind.
  if (strict) assertEnforced(policy, enforcement, { backend: 'local', sandboxId: id });
  const network = policy.network;
  const entries: EgressEntry[] | undefined =
    config.isolation === 'bwrap' && network?.mode === 'allowlist'
      ? parseEgressAllowlist(network.allow, 'local', context)
      : undefined;
  // Asked for by name, so never a silent fallback to running on the host.
  const tools =
    config.isolation === 'bwrap' ? findJailTools(config.bwrap, process.env.PATH ?? '') : undefined;
  if (typeof tools === 'string')
    throw new SandboxUnavailableError(`isolation 'bwrap' is not available: ${tools}`, context);
  // Read now, before anything exists: a secret that cannot be read or relayed refuses the open.
  const secrets =
    entries && enforcement.secrets.status === 'enforced'
      ? await loadSecrets(policy.secrets ?? [], entries, 'local', context, { terminatesTls: true })
      : undefined;
  const tls = secrets ? await loadTlsTermination(policy.secrets ?? [], id, context) : undefined;
  const existed = await fs.stat(workdir).then(
    (st) => st.isDirectory(),
    () => false,
  );
  if (existed && !idGiven)
    throw new SandboxUnavailableError(`sandbox directory ${dir} already exists`, context);
  signal?.throwIfAborted();
  const undo = async () => {
    if (!existed) await fs.rm(dir, { recursive: true, force: true });
  };
  if (!existed) {
    await fs.mkdir(workdir, { recursive: true, mode: 0o700 });
    if (policy.labels && Object.keys(policy.labels).length)
      await fs.writeFile(join(dir, LABELS_FILE), JSON.stringify(policy.labels), { mode: 0o600 });
    if (signal?.aborted) {
      await undo();
      signal.throwIfAborted();
    }
  }
  let jail: Jail | undefined;
  let egress: LocalEgress | undefined;
  let cgroup: JailCgroup | undefined;
  const limits = {
    pids: policy.limits?.pids,
    memoryMiB: policy.limits?.memoryMiB,
    cpus: policy.limits?.cpus,
  };
  if (tools) {
    try {
      // Limits only where they are enforced (strict: false opens without what cannot be).
      if (typeof layout !== 'string' && Object.values(limits).some((v) => v !== undefined))
        cgroup = await JailCgroup.create(layout, id, limits, context);
      jail = await Jail.start({
        cgroup,
        tools,
        workspace: workdir,
        sandboxesRoot: root,
        unshareNet: policy.network?.mode !== 'open',
        egress: entries ? await writeEgressFiles(dir, entries, tls) : undefined,
        mounts: [
          ...(policy.mounts ?? []),
          ...(policy.credentials ?? []).map((c) => ({ ...c, readOnly: true })),
        ],
        context: jailContext,
      });
      if (entries)
        egress = await LocalEgress.start({
          jail,
          dir,
          sandboxId: id,
          entries,
          logFile: config.egressLog ?? join(root, 'egress-denied.log'),
          onDenied: config.onEgressDenied,
          secrets,
          tls,
          context,
        }).catch(async (error) => {
          await jail?.close();
          throw error;
        });
    } catch (error) {
      await cgroup?.remove().catch(() => {});
      await undo();
      throw error;
    }
    if (signal?.aborted) {
      await egress?.close();
      await jail.close();
      await cgroup?.remove();
      await undo();
      signal.throwIfAborted();
    }
  }
  const trustEnv = tls ? tlsTrustEnv(EGRESS_TRUST_DIR) : undefined;
  return new LocalSandbox({
    id,
    dir,
    keep: config.keep,
    enforcement,
    jail,
    egress,
    secrets,
    trustEnv,
    cgroup,
  });
}

export const local = defineBackend({
  kind: 'local',
  configSchema: LocalConfigSchema,
  open: openLocal,
  sweep: sweepLocal,
  doctor: ({ config }) => doctorLocal(config, localEnforcement(config, PolicySchema.parse({}))),
});
registerBackend(local);

// Types `config` in `openSandbox({ backend: 'local', config })` for whoever imports this package.
declare module '@agentbox/core' {
  interface BackendConfigs {
    local: LocalConfig;
  }
}
