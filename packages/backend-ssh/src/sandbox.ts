/**
 * The SSH sandbox: a private directory `<root>/<id>/` on the remote host holding the workspace
 * (`workspace/`, the working directory of every command), the checkpoints and a scratch
 * directory, all mode 0700. Every command and file operation goes over the sandbox's one
 * connection. Commands run down shells kept open on that connection (core's SessionPool) when
 * one is idle, else on an exec channel of their own (the plain path). Close ends the sessions,
 * kills the commands still running, removes the directory unless `keep`, and ends the
 * connection.
 */
import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  AbortedError,
  type ControlStatus,
  type EnforcementReport,
  type ParsedPolicy,
  SandboxUnavailableError,
} from '@agentbox/core';
import {
  assertEnforced,
  BaseSandbox,
  type CheckpointStore,
  EGRESS_TRUST_DIR,
  type EgressDenial,
  type ErrorContext,
  ExecCheckpointStore,
  egressHostsFile,
  enforcementReport,
  frozenCheckpointStore,
  HOLDER_KILL_SCRIPT,
  holderPipeSet,
  loadSecrets,
  loadTlsTermination,
  type OpenContext,
  parseEgressAllowlist,
  type RawProcess,
  type SecretBinding,
  SessionPool,
  type StartRequest,
  type StoreExec,
  secretEnv,
  secretsStatus,
  signalNumber,
  type TlsTermination,
  tlsTrustEnv,
} from '@agentbox/core/backend';
import type { SshResolvedConfig } from './config.js';
import { SshConnection } from './connection.js';
import { SshEgress } from './egress.js';
import { RemoteFiles } from './files.js';
import {
  endJailCommand,
  freezeJail,
  inJailCommand,
  JailFiles,
  type JailInfo,
  startJail,
  thawJail,
} from './jail.js';
import { knownHostsName } from './known-hosts.js';
import { type RemoteProcess, startRemoteProcess } from './remote-process.js';
import { quoteAll, signalWord } from './shell.js';

const KIND = 'ssh';

/**
 * Channels of the `maxConcurrentCommands` budget the fast path leaves to others: the pool's
 * control shell, and at least one for plain commands and housekeeping. Sessions hold their
 * channel while idle, so without the spare one a plain command could wait for ever.
 */
const RESERVED_CHANNELS = 2;
/** Sessions at most, however large the budget: more than this many at once run on the plain path. */
const MAX_SESSIONS = 8;

/**
 * What SSH can and cannot enforce. `uid` is the login user's, once known (undefined before
 * connecting); `jail` is the sandbox's bubblewrap jail, or why it has none (undefined before
 * connecting).
 */
export function sshEnforcement(
  config: SshResolvedConfig,
  policy: ParsedPolicy,
  uid: number | undefined,
  jail?: JailInfo | string,
): EnforcementReport {
  const where = `${config.user}@${knownHostsName(config.host, config.port)}`;
  const no = (detail: string): ControlStatus => ({ status: 'not-supported', detail });
  const on = (detail: string): ControlStatus => ({ status: 'enforced', detail });
  const noContainer = (what: string) =>
    no(
      `${what}: plain SSH runs commands as a login user on the host, with no container or cgroup around them`,
    );
  const nonRoot: ControlStatus =
    uid === undefined
      ? on(`to be checked on connect (login user ${config.user})`)
      : uid === 0
        ? no(`the login user ${config.user} is root`)
        : on(`commands run as ${config.user} (uid ${uid})`);
  const jailed = typeof jail === 'object';
  const pending = jail === undefined && config.isolation !== 'none';
  const isolation: ControlStatus = jailed
    ? on(
        `remote host ${where}: each sandbox in a bubblewrap jail (own user, mount, PID, IPC and UTS namespaces; only its own workspace of the host visible; the checkpoint store and other sandboxes invisible)`,
      )
    : pending
      ? on(`to be checked on connect: a bubblewrap jail on ${where}`)
      : no(
          `remote host ${where}: ${config.isolation === 'none' ? "isolation 'none'" : `no bubblewrap jail (${jail})`}; sandboxes of ${config.user} share one user, so each can read and write the others' workspaces and checkpoints`,
        );
  const jailOr = (detail: string, otherwise: ControlStatus): ControlStatus =>
    jailed || pending ? on(pending ? `to be checked on connect: ${detail}` : detail) : otherwise;
  const net = policy.network?.mode;
  return enforcementReport(no('not applicable'), {
    isolation,
    readOnlyRoot: jailOr(
      'host system directories read-only in the jail; writable: the workspace and /tmp',
      noContainer('no read-only root filesystem'),
    ),
    tmp: jailed
      ? no(
          'a private /tmp (tmpfs, nosuid, nodev) in the jail, but bubblewrap sets neither its size nor noexec',
        )
      : no('no private tmpfs: TMPDIR points at a private directory of the sandbox, on the host filesystem'),
    'limits.pids': noContainer('no process limit'),
    'limits.memoryMiB': noContainer('no memory limit'),
    'limits.cpus': noContainer('no CPU limit'),
    'limits.diskMiB': noContainer('no disk quota'),
    checkpointIntegrity:
      jailed || pending
        ? on(
            `${pending ? 'to be checked on connect: ' : ''}the store is on the host out of the jail's view; checkpoints and rollbacks run with every process of the jail stopped (SIGSTOP); manifests carry an HMAC under a per-sandbox key (checkpoints/.key, mode 0600) the jail cannot read`,
          )
        : no(
            `the checkpoint store is in the sandbox directory on the host, writable by ${config.user}, who runs the commands`,
          ),
    dropCapabilities: jailOr(
      'the jail holds no capability the login user lacks on the host',
      noContainer('capabilities are those of the login user'),
    ),
    noNewPrivileges: jailOr(
      'every command runs with no_new_privs',
      noContainer('setuid programs on the host keep working'),
    ),
    nonRootUser: nonRoot,
    mounts: no('SSH has no bind mounts; upload the files into the workspace instead'),
    credentials: no('SSH has no read-only credential mounts'),
    network:
      net === 'none' && (jailed || pending)
        ? on(
            `${pending ? 'to be checked on connect: ' : ''}the jail has its own network namespace with only loopback`,
          )
        : net === 'allowlist' && (jailed || pending)
          ? on(
              `${pending ? 'to be checked on connect: ' : ''}the jail has its own network namespace with only loopback; a forwarder outside the sandbox's view relays only ${policy.network?.mode === 'allowlist' ? policy.network.allow.join(', ') : ''}, dialled by sshd from ${where}; DNS answers only those names; denied attempts logged`,
            )
          : net === 'allowlist'
            ? no('an egress allowlist needs the bubblewrap jail on the host')
            : no('commands share the network of the SSH host'),
    secrets: secretsStatus(
      policy.secrets,
      net === 'allowlist' && (jailed || pending)
        ? 'allowlist'
        : 'needs the bubblewrap jail on the host and network mode allowlist: the egress relay is what swaps in the values',
      { terminatesTls: true },
    ),
    labels: policy.labels
      ? on('recorded in the sandbox directory (sandbox.json)')
      : { status: 'not-requested', detail: 'no labels requested' },
  });
}

interface SshSandboxInit {
  id: string;
  config: SshResolvedConfig;
  conn: SshConnection;
  /** `<root>/<id>`, absolute. */
  dir: string;
  uid: number;
  enforcement: EnforcementReport;
  jail: JailInfo | undefined;
  /** HMAC key of the checkpoint manifests (jailed sandboxes: the jail cannot read it). */
  manifestKey?: Uint8Array | undefined;
  egress?: SshEgress | undefined;
  /** Placeholders of policy.secrets, in every command's environment. */
  secrets?: readonly SecretBinding[] | undefined;
  /** With TLS termination, the jail trusts the sandbox's CA (its variables go in every command's environment). */
  tls?: TlsTermination | undefined;
}

export class SshSandbox extends BaseSandbox {
  protected readonly checkpoints: CheckpointStore;
  readonly #conn: SshConnection;
  readonly #files: RemoteFiles | JailFiles;
  /** SFTP as the login user on the host, for the sandbox's own scratch files (outside any jail). */
  readonly #hostFiles: RemoteFiles;
  readonly #dir: string;
  readonly #keep: boolean;
  readonly #jail: JailInfo | undefined;
  readonly #egress: SshEgress | undefined;
  readonly #running = new Set<RemoteProcess>();
  /** The sessions' shells: a kill of a session command also reaches whoever holds their pipes. */
  readonly #shells = new Set<RemoteProcess>();
  /** Process groups whose connection dropped while they ran: they go on without us, so they are killed on the next call. */
  readonly #orphans = new Set<number>();
  /** The same for session commands in a jail, numbered in its PID namespace (killed from inside). */
  readonly #jailOrphans = new Set<number>();
  /** Settles when the current freeze ends: no command starts while the jail is frozen. */
  #thawed: Promise<unknown> = Promise.resolve();
  /** Processes a freeze stopped whose continue did not get through (the connection dropped): retried. */
  #stillStopped: number[] = [];
  /**
   * The fast exec path (core's SessionPool) in front of the plain one: small commands run down a
   * shell already open on the connection (one exec channel each, kept). `sessions.lastPath` and
   * `sessions.stats` say which path commands took; `config.fastPath: false` turns it off.
   */
  readonly sessions: SessionPool;

  constructor(init: SshSandboxInit) {
    const workdir = `${init.dir}/workspace`;
    super({
      kind: KIND,
      id: init.id,
      workdir,
      capabilities: {
        isolation: 'remote-host',
        checkpoints: true,
        spawn: true,
        stdin: true,
        kill: true,
        nonRootUser: init.uid !== 0,
        networkPolicy: init.jail !== undefined,
        reattach: true,
        unsupported: {
          ...(init.jail ? {} : { networkPolicy: 'commands share the network of the SSH host' }),
          ...(init.uid === 0 ? { nonRootUser: 'the SSH user is root (uid 0)' } : {}),
        },
      },
      enforcement: init.enforcement,
      baseEnv: {
        // In a jail, the host's scratch directory is out of sight and /tmp is private.
        TMPDIR: init.jail ? '/tmp' : `${init.dir}/tmp`,
        USER: init.config.user,
        LOGNAME: init.config.user,
        SHELL: '/bin/sh',
        ...secretEnv(init.secrets ?? []),
        ...(init.tls ? tlsTrustEnv(EGRESS_TRUST_DIR) : {}),
      },
    });
    this.#conn = init.conn;
    this.#dir = init.dir;
    this.#keep = init.config.keep;
    this.#jail = init.jail;
    this.#egress = init.egress;
    this.#hostFiles = new RemoteFiles(init.conn, this.context('files'));
    this.#files = init.jail
      ? new JailFiles(init.conn, init.jail, { backend: KIND, sandboxId: init.id })
      : this.#hostFiles;
    const store = checkpointStore(init, workdir, this.context('checkpoint'));
    const jail = init.jail;
    this.checkpoints = jail
      ? frozenCheckpointStore(store, (fn) => {
          const run = this.#thawed.then(() => this.#frozen(jail, fn));
          this.#thawed = run.catch(() => {});
          return run;
        })
      : store;
    // Each session is an exec channel held open, counted in the connection's command slots.
    const sessions = Math.min(MAX_SESSIONS, init.config.maxConcurrentCommands - RESERVED_CHANNELS);
    this.sessions = new SessionPool({
      // The shells start as any plain command does: through the wrapper (login-script noise
      // stripped, own process group), stdout and stderr on the channel's two streams, stdin
      // ended by channel EOF.
      startProcess: (req, signal) => this.#startPlain(req, signal),
      openShell: () => this.#openShell(),
      // In a jail with hidden copies (jail.ts) the runners start their waiting shells from them.
      runnerPrograms: () => init.jail?.hidden,
      // Kills go on a control channel; a group that cannot be reached (the connection dropped)
      // is remembered and killed on the next call, after the reconnect. In a jail the groups
      // are numbered in its PID namespace: the kill runs in the jail.
      signalGroup: (pgid: number, signal: string) =>
        init.jail ? this.#signalJailedGroup(init.jail, pgid, signal) : this.#signalGroup(pgid, signal),
      enabled: init.config.fastPath && sessions >= 1,
      maxSessions: Math.max(1, sessions),
      // Errors of session commands name the operation as the plain path's do.
      context: this.context('exec'),
    });
  }

  /** The sandbox's directory on the host (workspace, checkpoints, scratch). */
  get remoteDir(): string {
    return this.#dir;
  }

  /** The sandbox's bubblewrap jail on the host, if it has one (for tests and diagnostics). */
  get jail(): JailInfo | undefined {
    return this.#jail;
  }

  /** The latest denied egress attempts (network allowlist only; the log file has them all). */
  get egressDenials(): readonly EgressDenial[] {
    return this.#egress?.relay.denials ?? [];
  }

  /** Settles once every denied attempt heard so far is in the egress log file. */
  async egressLogged(): Promise<void> {
    await this.#egress?.relay.flushed();
  }

  /** The connection (for tests and diagnostics): `connects` counts (re)connections. */
  get connection(): SshConnection {
    return this.#conn;
  }

  async #frozen<T>(jail: JailInfo, fn: () => Promise<T>): Promise<T> {
    const context = this.context('checkpoint');
    await this.#thaw(jail, context);
    const stopped = await freezeJail(this.#conn, jail, context);
    try {
      return await fn();
    } finally {
      this.#stillStopped = stopped;
      await this.#thaw(jail, context).catch(() => {});
    }
  }

  async #thaw(jail: JailInfo, context: ErrorContext): Promise<void> {
    const pids = this.#stillStopped;
    if (pids.length === 0) return;
    await thawJail(this.#conn, jail, pids, context);
    this.#stillStopped = [];
  }

  protected async startProcess(req: StartRequest, signal: AbortSignal | undefined): Promise<RawProcess> {
    // No command starts while the jail is frozen (it would race the checkpoint, or be stopped).
    await this.#thawed;
    if (this.#jail && this.#stillStopped.length > 0) await this.#thaw(this.#jail, this.context('exec'));
    // Commands left running by a dropped connection are killed on the next call, whichever path it takes.
    if (this.#orphans.size + this.#jailOrphans.size > 0) await this.#killOrphans();
    return this.sessions.startProcess(req, signal);
  }

  /** The plain path: one exec channel per command, under the wrapper. */
  async #startPlain(req: StartRequest, signal: AbortSignal | undefined): Promise<RawProcess> {
    if (this.#orphans.size + this.#jailOrphans.size > 0) await this.#killOrphans();
    const proc = await startRemoteProcess(this.#conn, req, signal, {
      scratchDir: `${this.#dir}/tmp`,
      upload: (path, data, sig) => this.#hostFiles.write(path, once(data), 0o600, sig),
      context: this.context('exec'),
      jail: this.#jail,
    });
    if (this.closed) {
      await proc.kill('SIGKILL').catch(() => {});
      this.assertOpen('exec');
    }
    // Until its channel closes, the group has members (at least whoever holds the output open),
    // so its id cannot have been reused and signalling it on close is safe.
    this.#running.add(proc);
    proc.closed.then(() => this.#running.delete(proc));
    proc.exit.catch((error) => {
      if ((error as { code?: unknown }).code === 'SANDBOX_UNAVAILABLE') this.#orphans.add(proc.pgid);
    });
    return proc;
  }

  async #openShell(): Promise<RawProcess> {
    const sh = this.#jail?.hidden?.sh ?? 'sh';
    const shell = (await this.#startPlain({ argv: [sh], cwd: '/', env: {} }, undefined)) as RemoteProcess;
    this.#shells.add(shell);
    void shell.closed.finally(() => this.#shells.delete(shell));
    return shell;
  }

  /**
   * Holder sets of the sessions' shells: the runner (the shell's own pid, as `numbering` says)
   * is the parent of each session command; it, its waiting shell and `spared` are left alive.
   */
  #sessionPipeSets(numbering: 'host' | 'jail'): string[] {
    return [...this.#shells]
      .filter((shell) => shell.pipes.length > 0)
      .map((shell) => {
        const runner = numbering === 'jail' ? shell.peer : shell.pgid;
        return holderPipeSet(runner, numbering === 'jail' ? [runner] : [runner, shell.peer], shell.pipes);
      });
  }

  async #signalGroup(pgid: number, signal: string): Promise<void> {
    const lost = signal === 'SIGKILL';
    if (lost) this.#orphans.add(pgid);
    const name = signalWord(signal);
    // sshd's process for each shell's channel holds its pipes too: spared with the runner.
    await this.#conn.run(
      `sh -c ${quoteAll([HOLDER_KILL_SCRIPT, 'agentbox-kill', name, String(pgid), '', ...this.#sessionPipeSets('host')])}`,
      { control: true },
    );
    if (lost) this.#orphans.delete(pgid);
  }

  /** Signal a session command's group in the jail, and whoever there holds its session's pipes. */
  async #signalJailedGroup(jail: JailInfo, pgid: number, signal: string): Promise<void> {
    // A kill that cannot get through (the connection dropped) is done on the next call, as above.
    const lost = signal === 'SIGKILL';
    if (lost) this.#jailOrphans.add(pgid);
    await this.#conn.run(
      inJailCommand(jail, HOLDER_KILL_SCRIPT, [
        signalWord(signal),
        String(pgid),
        '',
        ...this.#sessionPipeSets('jail'),
      ]),
      { control: true, context: this.context('exec') },
    );
    if (lost) this.#jailOrphans.delete(pgid);
  }

  async #killOrphans(): Promise<void> {
    const groups = [...this.#orphans];
    this.#orphans.clear();
    await this.#killGroups(groups).catch(() => {
      for (const g of groups) this.#orphans.add(g);
    });
    const jailed = [...this.#jailOrphans];
    this.#jailOrphans.clear();
    if (jailed.length > 0 && this.#jail)
      await this.#conn
        .run(
          inJailCommand(
            this.#jail,
            'for g; do kill -s KILL -- "-$g" 2>/dev/null; done; true',
            jailed.map(String),
          ),
          {
            control: true,
          },
        )
        .catch(() => {
          for (const g of jailed) this.#jailOrphans.add(g);
        });
  }

  #killGroups(groups: readonly number[]): Promise<unknown> {
    if (groups.length === 0) return Promise.resolve();
    return this.#conn.run(`for g in ${groups.join(' ')}; do kill -s KILL -- -$g 2>/dev/null; done; true`, {
      control: true,
    });
  }

  protected readFileAt(path: string, maxBytes: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    return this.#files.read(path, maxBytes, signal);
  }

  protected writeFileAt(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
    signal: AbortSignal | undefined,
  ) {
    return this.#files.write(path, data, mode, signal);
  }

  protected async closeResources(): Promise<void> {
    try {
      // First: it kills what still runs on the sessions and ends their shells.
      await this.sessions.close();
      // Closing a channel leaves its command running on the host: signal every group still there.
      await this.#killGroups([...this.#running].map((p) => p.pgid).concat([...this.#orphans])).catch(
        () => {},
      );
      // Ending the jail ends every process left in it, those that left their group included.
      if (this.#jail)
        await this.#conn.check(endJailCommand(this.#jail), { control: true, context: this.context('close') });
      if (!this.#keep)
        await this.#conn.check(removeTreeCommand(this.#dir), {
          control: true,
          context: this.context('close'),
        });
    } finally {
      await this.#egress?.close();
      this.#conn.close();
    }
  }
}

/** Checkpoints live on the host next to the workspace: only commands and listings cross the network. */
function checkpointStore(init: SshSandboxInit, workdir: string, context: ErrorContext): CheckpointStore {
  const storeDir = `${init.dir}/checkpoints`;
  // Core's incremental store, driven through this connection: only listings cross the network.
  const exec: StoreExec = async (argv, { stdin, signal }) => {
    const r = await init.conn.run(`exec env LC_ALL=C ${quoteAll(argv)}`, {
      signal,
      ...(stdin ? { stdin } : {}),
      context,
    });
    return { exitCode: r.code ?? 128 + signalNumber(r.signal ?? ''), stdout: r.stdout, stderr: r.stderr };
  };
  return new ExecCheckpointStore({
    exec,
    root: workdir,
    storeDir,
    // The login user owns everything in the workspace and may not chown.
    preserveOwnership: false,
    ...(init.manifestKey ? { manifestKey: init.manifestKey } : {}),
    // A jail's processes are all stopped around each checkpoint; without a jail nothing is.
    frozen: init.jail !== undefined,
    context: { backend: KIND, sandboxId: init.id },
  });
}

// Created once (O_EXCL, mode 0600) beside the store's contents, out of the jail's view; a
// re-attach reads the same key back.
const MANIFEST_KEY = `umask 077; f="$1/checkpoints/.key"
[ -s "$f" ] || (set -C; cat > "$f") 2>/dev/null
cat -- "$f"`;

/** The sandbox's checkpoint manifest key: made on first open, read back on re-attach. */
async function manifestKeyOf(conn: SshConnection, dir: string, context: ErrorContext): Promise<Uint8Array> {
  const fresh = randomBytes(32).toString('hex');
  const r = await conn.run(`sh -c ${quoteAll([MANIFEST_KEY, 'sh', dir])}`, { stdin: `${fresh}\n`, context });
  const text = r.stdout.toString('utf8').trim();
  if (r.code !== 0 || !/^[0-9a-f]{64}$/.test(text))
    throw new SandboxUnavailableError(
      `cannot read the checkpoint key ${dir}/checkpoints/.key: ${r.stderr.toString('utf8').trim() || 'not a 32-byte hex key'}`,
      context,
    );
  return Buffer.from(text, 'hex');
}

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}

/** `rm -rf` that also removes read-only directories. */
function removeTreeCommand(dir: string): string {
  return `sh -c ${quoteAll(['[ -e "$1" ] || exit 0; chmod -R u+rwX "$1" 2>/dev/null; rm -rf "$1"', 'sh', dir])}`;
}

const SETUP = `set -e
umask 077
root=$1 id=$2 attach=$3 meta=$4
case "$root" in "~") root=$HOME ;; "~/"*) root="$HOME/\${root#"~/"}" ;; esac
dir="$root/$id"
if [ -d "$dir/workspace" ]; then
  [ "$attach" = 1 ] || { echo "sandbox directory $dir already exists" >&2; exit 4; }
  existed=1
else
  existed=0
fi
mkdir -p "$dir/workspace" "$dir/checkpoints" "$dir/tmp"
chmod 700 "$dir" "$dir/workspace" "$dir/tmp" "$dir/checkpoints"
[ -f "$dir/sandbox.json" ] || printf '%s\\n' "$meta" > "$dir/sandbox.json"
cd "$dir"
printf '%s\\n%s\\n%s\\n' "$(id -u)" "$existed" "$(pwd)"`;

export async function openSsh({
  id,
  idGiven,
  config,
  policy,
  strict,
  signal,
}: OpenContext<SshResolvedConfig>) {
  const context = { backend: KIND, operation: 'open', sandboxId: id };
  // Refuse before connecting what no login can enforce; nonRootUser is checked once connected.
  if (strict)
    assertEnforced(policy, sshEnforcement(config, policy, undefined), { backend: KIND, sandboxId: id });
  if (signal?.aborted) throw new AbortedError('aborted before open', context);
  const conn = new SshConnection(config, { backend: KIND, sandboxId: id });
  let dir: string | undefined;
  let created = false;
  let started: JailInfo | undefined;
  let egress: SshEgress | undefined;
  try {
    const meta = JSON.stringify({ id, createdAt: new Date().toISOString(), labels: policy.labels ?? {} });
    const setup = `sh -c ${quoteAll([SETUP, 'sh', config.root, id, idGiven ? '1' : '0', meta])}`;
    // Connecting can be aborted; setup, once sent, runs to its end so that an abort can undo it exactly.
    await conn.link(signal);
    const result = await conn.run(setup, { context });
    if (result.code === 4) throw new SandboxUnavailableError(result.stderr.toString('utf8').trim(), context);
    if (result.code !== 0)
      throw new SandboxUnavailableError(
        `cannot create the sandbox directory: ${result.stderr.toString('utf8').trim()}`,
        context,
      );
    const [uidText, existedText, path] = result.stdout.toString('utf8').trimEnd().split('\n');
    dir = path!;
    created = existedText === '0';
    const uid = Number(uidText);
    let jail: JailInfo | string = "isolation 'none'";
    const network = policy.network;
    const entries =
      network?.mode === 'allowlist' && config.isolation !== 'none'
        ? parseEgressAllowlist(network.allow, KIND, context)
        : undefined;
    // The jail is told to trust the sandbox's CA when a secret's host asks for TLS termination.
    const tls = entries ? await loadTlsTermination(policy.secrets ?? [], id, context) : undefined;
    if (config.isolation !== 'none') {
      const net = network?.mode;
      jail = await startJail(conn, {
        dir: dir!,
        root: dir!.slice(0, dir!.lastIndexOf('/')) || '/',
        ownNetwork: net === 'none' || net === 'allowlist',
        egressHosts: entries ? egressHostsFile(entries) : undefined,
        trustCa: tls?.ca.certificatePem,
        context,
      });
      // Asked for by name: never a silent fallback to the shared login user.
      if (typeof jail === 'object') started = jail;
      if (typeof jail === 'string' && config.isolation === 'bwrap')
        throw new SandboxUnavailableError(`isolation 'bwrap' is not available on the host: ${jail}`, context);
    }
    const manifestKey = typeof jail === 'object' ? await manifestKeyOf(conn, dir!, context) : undefined;
    const enforcement = sshEnforcement(config, policy, uid, jail);
    if (strict) assertEnforced(policy, enforcement, { backend: KIND, sandboxId: id });
    if (signal?.aborted) throw new AbortedError('aborted during open', context);
    // Read here, on this machine: the values never go to the SSH host but inside relayed requests.
    const secrets =
      entries && started && enforcement.secrets.status === 'enforced'
        ? await loadSecrets(policy.secrets ?? [], entries, KIND, context, { terminatesTls: true })
        : undefined;
    if (entries && started)
      egress = await SshEgress.start({
        conn,
        jail: started,
        dir: dir!,
        sandboxId: id,
        entries,
        logFile: config.egressLog ?? join(homedir(), '.agentbox', 'egress-denied.log'),
        onDenied: config.onEgressDenied,
        secrets,
        tls: secrets ? tls : undefined,
        context,
      });
    const sandbox = new SshSandbox({
      id,
      config,
      conn,
      dir,
      uid,
      enforcement,
      jail: typeof jail === 'object' ? jail : undefined,
      manifestKey,
      egress,
      secrets,
      tls: secrets ? tls : undefined,
    });
    // The first command should not pay for opening a session. Where the host cannot run one,
    // the pool says why (sessions.unavailableReason) and every command takes the plain path.
    await sandbox.sessions.warm();
    if (signal?.aborted) {
      await sandbox.sessions.close();
      throw new AbortedError('aborted during open', context);
    }
    return sandbox;
  } catch (error) {
    await egress?.close();
    if (started) await conn.run(endJailCommand(started), { control: true }).catch(() => {});
    if (created && dir !== undefined)
      await conn.run(removeTreeCommand(dir), { control: true }).catch(() => {});
    conn.close();
    throw error;
  }
}
