/**
 * The local backend's isolated mode: bubblewrap (`isolation: 'bwrap'`).
 *
 * Each sandbox is one long-lived `bwrap` process, the jail: its own user, mount, PID, IPC and
 * UTS namespaces, and its own network namespace unless the network is open. It sees a minimal
 * read-only root (the host's /usr, /etc and library directories), the workspace as the only
 * writable host directory, a private /tmp, its own /proc and a few device nodes; the library's
 * home, environment, other sandboxes and the checkpoint store are not in it.
 *
 * A command enters the jail's namespaces with `nsenter` (so `ps` in the sandbox sees every
 * process of the sandbox and nothing else), capabilities dropped and no_new_privs set. Killing
 * its process group ends it, and whoever still holds its output; a process that left the group
 * and its output lives on in the jail until close(), which ends the jail's init and so, by the
 * kernel, every process in its namespace. Checkpoints run with the jail frozen (frozen()).
 * File operations run inside the jail too, so a symlink in the workspace resolves as the
 * sandbox sees it, never to a host path.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AgentboxError, SandboxUnavailableError } from '@agentbox/core';
import {
  checkFileScript,
  continueProcesses,
  EGRESS_TRUST_DIR,
  type ErrorContext,
  type HostProcess,
  namespaceMembers,
  pidNamespaceOf,
  READ_FILE_SCRIPT,
  readScriptResult,
  type StartRequest,
  stopProcesses,
  WRITE_FILE_SCRIPT,
} from '@agentbox/core/backend';
import { type JailCgroup, joinCgroupArgv } from './jail-cgroup.js';

/** The pipes a host process holds as its stdout and stderr (`socket:[inode]`: node's are socket pairs). */
export function outputPipes(pid: number | undefined): string[] {
  if (pid === undefined) return [];
  const pipes: string[] = [];
  for (const fd of [1, 2]) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link.startsWith('pipe:') || link.startsWith('socket:')) pipes.push(link);
    } catch {
      // Gone already: nothing of it to find later either.
    }
  }
  return pipes;
}

/**
 * Signal each of `pids` that holds one of `pipes` (as `outputPipes` names them; their inodes are
 * unique on the host, so a match is a process the command's output went to) and still passes `still`.
 */
export function signalHolders(
  pipes: readonly string[],
  signal: string,
  pids: readonly number[],
  still: (pid: number) => boolean = () => true,
): void {
  if (pipes.length === 0) return;
  for (const pid of pids) {
    if (pid === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    const holds = fds.some((fd) => {
      try {
        return pipes.includes(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        return false;
      }
    });
    if (!holds || !still(pid)) continue;
    try {
      process.kill(pid, signal);
    } catch {
      // Gone meanwhile.
    }
  }
}

/** Every process id on the host (only those this user may inspect can match). */
export function hostPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** Host directories the jail shows read-only when they exist (symlinks, as on merged-/usr hosts, are kept as symlinks). */
const SYSTEM_PATHS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc'];
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

export interface JailTools {
  bwrap: string;
  nsenter: string;
  setpriv: string;
}

/** Absolute paths of bwrap and nsenter, or the reason they cannot be used. */
export function findJailTools(bwrap: string, searchPath: string): JailTools | string {
  const find = (name: string) => {
    const candidates = name.includes('/') ? [name] : searchPath.split(delimiter).map((d) => join(d, name));
    return candidates.find((c) => {
      try {
        accessSync(c, constants.X_OK);
        return c.startsWith('/');
      } catch {
        return false;
      }
    });
  };
  const b = find(bwrap);
  if (!b) return `bubblewrap (${bwrap}) is not installed (Debian: apt-get install bubblewrap)`;
  const n = find('nsenter');
  if (!n) return 'nsenter (util-linux) is not installed';
  const p = find('setpriv');
  if (!p) return 'setpriv (util-linux) is not installed';
  return { bwrap: b, nsenter: n, setpriv: p };
}

export interface JailOptions {
  tools: JailTools;
  workspace: string;
  /** The directory holding every sandbox's directory: covered by an empty tmpfs, so none but this workspace shows. */
  sandboxesRoot: string;
  /** The sandbox's own network namespace (no network) unless false. */
  unshareNet: boolean;
  /** The allowlist's network (egress.ts): the jail's /etc/hosts and /etc/resolv.conf, bound read-only. */
  egress?: { hostsFile: string; resolvConf: string; trustDir?: string | undefined } | undefined;
  mounts: readonly { source: string; target: string; readOnly: boolean }[];
  /** The sandbox's cgroup (its limits): the init and every process entering the jail join it. */
  cgroup?: JailCgroup | undefined;
  context: ErrorContext;
}

/** bwrap's arguments for the jail (without the command). */
export function jailArgs(opts: JailOptions): string[] {
  const args = ['--unshare-user', '--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup-try'];
  // With an allowlist the network namespace is the outer one's (outerArgs).
  if (opts.unshareNet && !opts.egress) args.push('--unshare-net');
  if (opts.egress)
    args.push('--uid', String(process.getuid?.() ?? 0), '--gid', String(process.getgid?.() ?? 0));
  // Dies with the library's process; no --new-session needed, the holder reads nothing but its stdin.
  args.push('--die-with-parent', '--hostname', 'agentbox');
  for (const path of SYSTEM_PATHS) {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(path), path);
    else if (st.isDirectory()) args.push('--ro-bind', path, path);
  }
  if (opts.egress)
    args.push(
      '--ro-bind',
      opts.egress.hostsFile,
      '/etc/hosts',
      '--ro-bind',
      opts.egress.resolvConf,
      '/etc/resolv.conf',
    );
  // Device nodes one by one: `--dev` would need a second user namespace, which nsenter cannot enter.
  args.push('--proc', '/proc', '--tmpfs', '/dev');
  for (const d of DEVICES) args.push('--dev-bind-try', `/dev/${d}`, `/dev/${d}`);
  args.push(
    '--symlink',
    '/proc/self/fd',
    '/dev/fd',
    '--symlink',
    '/proc/self/fd/0',
    '/dev/stdin',
    '--symlink',
    '/proc/self/fd/1',
    '/dev/stdout',
    '--symlink',
    '/proc/self/fd/2',
    '/dev/stderr',
  );
  args.push('--tmpfs', '/tmp', '--tmpfs', '/run');
  if (opts.egress?.trustDir) args.push('--ro-bind', opts.egress.trustDir, EGRESS_TRUST_DIR);
  if (opts.sandboxesRoot !== '/') args.push('--tmpfs', opts.sandboxesRoot);
  args.push('--bind', opts.workspace, opts.workspace);
  for (const m of opts.mounts) args.push(m.readOnly ? '--ro-bind' : '--bind', m.source, m.target);
  args.push('--remount-ro', '/', '--chdir', opts.workspace, '--clearenv');
  return args;
}

/**
 * With an allowlist, the jail runs inside an outer bwrap that owns the network namespace and
 * maps the library's user to root: the forwarder enters that namespace as root there (so it can
 * listen on ports below 1024, and stays outside the jail's PID and mount namespaces), while
 * the jail's own user namespace, a child of it, gives the sandbox no capability at all.
 */
function outerArgs(bwrap: string): string[] {
  return [
    bwrap,
    '--unshare-user',
    '--uid',
    '0',
    '--gid',
    '0',
    '--unshare-net',
    '--cap-add',
    'ALL',
    '--die-with-parent',
    '--dev-bind',
    '/',
    '/',
    '--info-fd',
    '4',
    '--',
  ];
}

/** Child pid from bwrap's --info-fd JSON, once it is there. */
function childPid(info: string): number | undefined {
  const pid = /"child-pid":\s*(\d+)\s*,/.exec(info);
  return pid ? Number(pid[1]) : undefined;
}

export class Jail {
  readonly #tools: JailTools;
  readonly #holder: ChildProcess;
  readonly #context: ErrorContext;
  readonly #unshareNet: boolean;
  readonly #pidNamespace: string;
  readonly #cgroup: JailCgroup | undefined;
  #gone: string | undefined;
  /** With an allowlist: host pid of the process that owns the network namespace (the inner bwrap's monitor). */
  readonly outerPid: number | undefined;
  /** Host pid of the jail's init (bwrap's pid 1): the target of nsenter. */
  readonly pid: number;

  /** `pid:[inode]` of the jail's PID namespace: with `pid`, what identifies the running jail. */
  get pidNamespace(): string {
    return this.#pidNamespace;
  }

  private constructor(
    tools: JailTools,
    holder: ChildProcess,
    pid: number,
    pidNamespace: string,
    opts: JailOptions,
    stderr: () => string,
    outerPid: number | undefined,
  ) {
    this.outerPid = outerPid;
    this.#tools = tools;
    this.#holder = holder;
    this.pid = pid;
    this.#pidNamespace = pidNamespace;
    this.#context = opts.context;
    this.#unshareNet = opts.unshareNet;
    this.#cgroup = opts.cgroup;
    holder.once('exit', (code, signal) => {
      const why = stderr().trim();
      this.#gone = `the sandbox's jail ended (${signal ?? `exit ${code}`}${why ? `: ${why}` : ''})`;
    });
  }

  /**
   * Throws unless the jail still runs and its pid still names its init: nsenter must never
   * enter the namespaces of whatever process reused that pid.
   */
  assertAlive(): void {
    if (this.#gone === undefined && pidNamespaceOf(this.pid) !== this.#pidNamespace)
      this.#gone = "the sandbox's jail is gone (its init no longer runs)";
    if (this.#gone !== undefined) throw new SandboxUnavailableError(this.#gone, this.#context);
  }

  static async start(opts: JailOptions): Promise<Jail> {
    // The jail holds on to its stdin: it ends when we end it, or when this process dies.
    // It says `ready` once it runs: bwrap reports the pid before the jail's mounts are all in place.
    const inner = [...jailArgs(opts), '--info-fd', '3', '--', 'sh', '-c', 'echo ready; read -r _'];
    const [program, ...args] = opts.egress
      ? [...outerArgs(opts.tools.bwrap), opts.tools.bwrap, ...inner]
      : [opts.tools.bwrap, ...inner];
    const holder = spawn(program!, args, {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', opts.egress ? 'pipe' : 'ignore'],
      env: {},
    });
    // The outer bwrap's info comes on its own pipe, in no set order with the inner one's.
    let outerInfo = '';
    const outerStarted = new Promise<number | undefined>((resolve) => {
      const outerPipe = holder.stdio[4] as NodeJS.ReadableStream | null;
      if (!outerPipe) return resolve(undefined);
      outerPipe.on('data', (chunk: Buffer) => {
        outerInfo += chunk.toString('utf8');
        const pid = childPid(outerInfo);
        if (pid !== undefined) resolve(pid);
      });
      holder.once('exit', () => resolve(undefined));
      holder.once('error', () => resolve(undefined));
    });
    holder.stdin!.on('error', () => {});
    let stderr = '';
    holder.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    let ready = '';
    const readyOut = new Promise<boolean>((resolve) => {
      holder.stdout!.on('data', (chunk: Buffer) => {
        ready += chunk.toString('utf8');
        if (ready.includes('ready\n')) resolve(true);
      });
      holder.once('exit', () => resolve(false));
      holder.once('error', () => resolve(false));
    });
    let info = '';
    const infoPipe = holder.stdio[3] as NodeJS.ReadableStream;
    // bwrap writes the JSON in pieces: wait for the pid namespace too, it identifies the jail.
    const started = await new Promise<{ pid: number; pidNamespace: string } | undefined>((resolve) => {
      infoPipe.on('data', (chunk: Buffer) => {
        info += chunk.toString('utf8');
        const pid = /"child-pid":\s*(\d+)\s*,/.exec(info);
        const ns = /"pid-namespace":\s*(\d+)/.exec(info);
        if (pid && ns && /"pid-namespace":\s*\d+\s*[,}\n]/.test(info))
          resolve({ pid: Number(pid[1]), pidNamespace: `pid:[${ns[1]}]` });
      });
      holder.once('exit', () => resolve(undefined));
      holder.once('error', () => resolve(undefined));
    });
    const outerPid = opts.egress && started !== undefined ? await outerStarted : undefined;
    const failure =
      started === undefined
        ? 'it exited before its sandbox process started'
        : !(await readyOut)
          ? 'the sandbox process ended before it was ready'
          : pidNamespaceOf(started.pid) !== started.pidNamespace
            ? 'the sandbox process is not in the PID namespace bubblewrap reported'
            : opts.egress && outerPid === undefined
              ? 'the outer namespace (for the egress allowlist) did not report its process'
              : undefined;
    if (failure !== undefined || started === undefined) {
      holder.kill('SIGKILL');
      throw new SandboxUnavailableError(
        `bubblewrap could not start the sandbox: ${stderr.trim() || failure} (are unprivileged user namespaces allowed?)`,
        { ...opts.context, operation: 'open' },
      );
    }
    try {
      await opts.cgroup?.join(started.pid);
    } catch (error) {
      holder.kill('SIGKILL');
      throw new SandboxUnavailableError(`cannot put the sandbox in its cgroup: ${(error as Error).message}`, {
        ...opts.context,
        operation: 'open',
        cause: error,
      });
    }
    return new Jail(opts.tools, holder, started.pid, started.pidNamespace, opts, () => stderr, outerPid);
  }

  /** argv (program first) that enters every namespace of the jail (joining its cgroup first). */
  #enter(): string[] {
    this.assertAlive();
    return [...joinCgroupArgv(this.#cgroup?.procsFiles ?? []), ...this.#namespaces()];
  }

  #namespaces(): string[] {
    const ns = ['-U', '-m', '-p', '-i', '-u'];
    if (this.outerPid !== undefined) {
      // Two steps: the network namespace belongs to the outer user namespace, which must be
      // entered first (as its root, the library's user); from there the jail's child one.
      return [
        ...this.enterNetwork(),
        this.#tools.nsenter,
        '-t',
        String(this.pid),
        ...ns,
        '--preserve-credentials',
        '--',
      ];
    }
    if (this.#unshareNet) ns.push('-n');
    return [this.#tools.nsenter, '-t', String(this.pid), ...ns, '--preserve-credentials', '--'];
  }

  /** argv (program first) that enters only the allowlist's network namespace, as root of its user namespace. */
  enterNetwork(): string[] {
    if (this.outerPid === undefined) throw new Error('the jail has no allowlist network');
    return [this.#tools.nsenter, '-t', String(this.outerPid), '-U', '-n', '--preserve-credentials', '--'];
  }

  /** argv (program first) that runs a command in the jail. */
  commandArgv(req: StartRequest): string[] {
    return [
      ...this.#enter(),
      ...this.#dropPrivileges(),
      '/bin/sh',
      '-c',
      // Through sh so that a missing program is 127 and an unexecutable one 126, as on the host.
      'cd -- "$1" || exit 1; shift; exec "$@"',
      'sh',
      req.cwd,
      ...req.argv,
    ];
  }

  /**
   * Entering the jail's user namespace grants every capability in it until the next exec; a
   * non-root user loses them at that exec, root keeps them, so for root the bounding set goes
   * too. no_new_privs for everyone, as bwrap sets it on its own children.
   */
  #dropPrivileges(): string[] {
    const root = process.getuid?.() === 0;
    return [
      this.#tools.setpriv,
      '--no-new-privs',
      ...(root ? ['--bounding-set=-all', '--inh-caps=-all', '--ambient-caps=-all'] : []),
      '--',
    ];
  }

  /** Is `path` a directory in the jail? (For the working directory check.) */
  async isDirectory(path: string): Promise<boolean> {
    const r = await this.#run('[ -d "$1" ]', [path]);
    return r.code === 0;
  }

  async readFile(path: string, maxBytes: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const r = await this.#run(READ_FILE_SCRIPT, [path, String(maxBytes)], undefined, signal);
    return readScriptResult(r, path, maxBytes, this.#context);
  }

  async writeFile(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const r = await this.#run(
      WRITE_FILE_SCRIPT,
      [path, mode === undefined ? '' : mode.toString(8)],
      data,
      signal,
    );
    checkFileScript(r, path, this.#context);
  }

  /** Run a script of ours in the jail (not in a PID namespace of its own: it is not the sandbox's code). */
  async #run(
    script: string,
    args: string[],
    stdin?: AsyncIterable<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
    const [nsenter, ...enter] = this.#enter();
    const child = spawn(
      nsenter!,
      [...enter, ...this.#dropPrivileges(), '/bin/sh', '-c', script, 'sh', ...args],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
        signal,
      },
    );
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => resolve(code));
    });
    if (stdin) {
      // A script that exits early (a bad path) closes its stdin: the exit status says why.
      await pipeline(stdin, child.stdin!).catch((error) => {
        if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
      });
    } else child.stdin!.end();
    const code = await exited.catch((error) => {
      throw error instanceof Error && error.name === 'AbortError'
        ? error
        : new AgentboxError(`cannot enter the sandbox: ${(error as Error).message}`, this.#context);
    });
    return { code, stdout: Buffer.concat(out), stderr: err };
  }

  /** Host pids of every process in the jail's PID namespace but its init (bwrap's own reaper). */
  #members(): number[] {
    return namespaceMembers(this.pid, this.#pidNamespace);
  }

  /** Run `fn` with every process of the sandbox stopped (SIGSTOP), continued in `finally`. */
  async frozen<T>(fn: () => Promise<T>): Promise<T> {
    this.assertAlive();
    const stopped = await stopProcesses(() => this.#members(), this.#context);
    try {
      return await fn();
    } finally {
      continueProcesses(stopped);
    }
  }

  /**
   * Signal every process of the jail that holds one of `pipes` (a command's output): one that
   * left the command's group but kept its output is still the command's.
   */
  signalHolders(pipes: readonly string[], signal: string): void {
    if (this.#gone !== undefined) return;
    // Checked again just before each kill: the pid must still be the jail's.
    signalHolders(pipes, signal, this.#members(), (pid) => pidNamespaceOf(pid) === this.#pidNamespace);
  }

  /** End the jail: its init dies, and the kernel kills every process left in its namespace. */
  async close(): Promise<void> {
    if (this.#holder.exitCode !== null || this.#holder.signalCode !== null) return;
    const gone = new Promise((resolve) => this.#holder.once('exit', resolve));
    this.#holder.kill('SIGKILL');
    await gone;
  }
}

/** Start a command in the jail as the leader of a new process group (nsenter leads it). */
export function jailCommand(
  jail: Jail,
  req: StartRequest,
  start: (req: StartRequest) => HostProcess,
): HostProcess {
  const [program, ...args] = jail.commandArgv(req);
  // The host process starts in /: the command's directory exists only in the jail's view.
  return start({ argv: [program!, ...args], cwd: '/', env: req.env });
}
