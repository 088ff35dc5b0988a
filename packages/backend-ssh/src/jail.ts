/**
 * One sandbox per identity on a shared login user: each sandbox's commands run in a bubblewrap
 * jail on the host (issue 15, finding 2). The jail is one long-lived `bwrap` per sandbox with
 * its own user, mount, PID, IPC and UTS namespaces (and network namespace unless the network
 * is open): a minimal read-only root (the host's /usr, /etc and library directories), this
 * sandbox's workspace the only host directory in it, a private /tmp, its own /proc. Other
 * sandboxes' directories, the checkpoint store and the login user's home are not in it.
 *
 * The jail is started detached from the connection, so a dropped connection leaves it (and
 * the commands in it) as a reconnect finds them; a watcher on the host ends it once the
 * sandbox's directory is gone, and close() ends it at once. Ending the jail's init makes the
 * kernel kill every process left in its PID namespace, those that left their process group
 * included. Commands enter it with `nsenter` (the wrapper in shell.ts), after checking that
 * the recorded pid still is the jail's init, and with no_new_privs set.
 */
import { SandboxUnavailableError } from '@agentbox/core';
import {
  checkFileScript,
  EGRESS_RESOLV_CONF,
  EGRESS_TRUST_DIR,
  type ErrorContext,
  READ_FILE_SCRIPT,
  readScriptResult,
  SYSTEM_CA_BUNDLE,
  untilDrained,
  WRITE_FILE_SCRIPT,
} from '@agentbox/core/backend';
import type { SshConnection } from './connection.js';
import { quote, quoteAll } from './shell.js';

/** What the wrapper needs to enter a jail. */
export interface JailInfo {
  /** Host pid of the jail's init (bwrap's pid 1). */
  pid: number;
  /** `readlink /proc/<pid>/ns/pid` when the jail started: a reused pid never matches it. */
  pidNamespace: string;
  nsenter: string;
  setpriv: string;
  /** The jail has a network namespace of its own (enter it too). */
  ownNetwork: boolean;
  /**
   * Execute-only copies of `sh` and `setsid` as the jail sees them, and a readable `env`: the
   * sessions' long-lived processes run from them (see HIDDEN below). Undefined when the login
   * user is root (it could read them anyway) or the copies would not run.
   */
  hidden?: { sh: string; setsid: string; env: string } | undefined;
  /**
   * With a network allowlist: host pid of the process owning the network namespace (the
   * outer bwrap's child), whose user namespace maps the login user to root (see START).
   */
  outerPid?: number | undefined;
}

/** Where the jail sees the hidden copies. */
const HIDDEN_DIR = '/run/.agentbox';

/** Exit status of the start script when the host lacks a tool: isolation is then not available. */
const MISSING_TOOLS = 3;

// net: 0 host network, 1 own network namespace, 2 allowlist. With the allowlist the jail runs in
// an outer bwrap that owns the network namespace and maps the login user to root, so that the
// egress forwarder (egress.ts) can join that namespace as root there (ports below 1024) while
// staying out of the jail's PID and mount namespaces; the jail's own user namespace, a child of
// the outer one, gives the sandbox no capability. $4 and $5: the jail's /etc/hosts and resolv.conf;
// $6: the sandbox's CA certificate when the relay terminates TLS (read-only in TRUST_DIR, with the
// host's roots beside it in a bundle).
const START = `dir=$1 root=$2 net=$3 hosts=$4 resolv=$5 ca=$6
for t in bwrap nsenter setpriv; do command -v "$t" >/dev/null 2>&1 || { echo "$t is not installed on the host" >&2; exit ${MISSING_TOOLS}; }; done
b=$(command -v bwrap) n=$(command -v nsenter) p=$(command -v setpriv)
set -- --unshare-user --unshare-ipc --unshare-pid --unshare-uts --unshare-cgroup-try --hostname agentbox
[ "$net" = 1 ] && set -- "$@" --unshare-net
[ "$net" = 2 ] && set -- "$@" --uid "$(id -u)" --gid "$(id -g)"
for d in /usr /bin /sbin /lib /lib32 /lib64 /libx32 /etc; do
  if [ -L "$d" ]; then set -- "$@" --symlink "$(readlink "$d")" "$d"
  elif [ -d "$d" ]; then set -- "$@" --ro-bind "$d" "$d"; fi
done
if [ "$net" = 2 ]; then
  mkdir -p "$dir/egress" && printf '%s' "$hosts" > "$dir/egress/hosts" && printf '%s' "$resolv" > "$dir/egress/resolv.conf" || exit 4
  chmod 644 "$dir/egress/hosts" "$dir/egress/resolv.conf"
  set -- "$@" --ro-bind "$dir/egress/hosts" /etc/hosts --ro-bind "$dir/egress/resolv.conf" /etc/resolv.conf
  set -- --unshare-user --uid 0 --gid 0 --unshare-net --cap-add ALL --die-with-parent --dev-bind / / --info-fd 4 -- "$b" "$@"
fi
# Device nodes one by one: --dev would need a second user namespace, which nsenter cannot enter.
set -- "$@" --proc /proc --tmpfs /dev
for d in null zero full random urandom tty; do set -- "$@" --dev-bind-try "/dev/$d" "/dev/$d"; done
set -- "$@" --symlink /proc/self/fd /dev/fd --symlink /proc/self/fd/0 /dev/stdin --symlink /proc/self/fd/1 /dev/stdout --symlink /proc/self/fd/2 /dev/stderr
set -- "$@" --tmpfs /tmp --tmpfs /run --tmpfs "$root" --bind "$dir/workspace" "$dir/workspace"
if [ -n "$ca" ]; then
  t=$dir/egress/trust
  mkdir -p "$t" && printf '%s' "$ca" > "$t/egress-ca.pem" && { cat ${SYSTEM_CA_BUNDLE} 2>/dev/null; printf '%s' "$ca"; } > "$t/ca-bundle.pem" || exit 4
  chmod 755 "$t" && chmod 644 "$t/egress-ca.pem" "$t/ca-bundle.pem"
  set -- "$@" --ro-bind "$t" ${EGRESS_TRUST_DIR}
fi
set -- "$@" --remount-ro / --chdir "$dir/workspace" --clearenv --setenv PATH /usr/bin:/bin
# Session shells the jail's own processes cannot reach into: a process whose program its user may
# run but not read is not dumpable, so no other process of that user (without capabilities, as
# every jail process is) may open its /proc/<pid>/fd. Copies owned by the login user, mode 0111,
# bound read-only (so never made readable again from inside); not for root, who reads anything.
h= e=$(command -v env)
if [ "$(id -u)" != 0 ] && [ -n "$e" ] && s=$(command -v setsid); then
  rm -rf "$dir/hidden"
  if (umask 077 && mkdir "$dir/hidden" && cp /bin/sh "$dir/hidden/sh" && cp "$s" "$dir/hidden/setsid" &&
    chmod 0111 "$dir/hidden/sh" "$dir/hidden/setsid" && chmod 0711 "$dir/hidden" &&
    "$dir/hidden/sh" -c 'exec "$0" true' "$dir/hidden/setsid") 2>/dev/null; then
    h=${HIDDEN_DIR}
    set -- "$@" --ro-bind "$dir/hidden" "$h"
  fi
fi
rm -f "$dir/jail.info" "$dir/jail.err" "$dir/jail.outer"
setsid sh -c '
  d=$1; shift
  env -i "$@" --info-fd 3 -- sh -c "while :; do sleep 3600; done" 3>"$d/jail.info" 4>"$d/jail.outer" </dev/null >/dev/null 2>"$d/jail.err" &
  i=0 c=
  while [ -z "$c" ] && [ $i -lt 200 ]; do
    c=$(sed -n "s/.*\\"child-pid\\": *\\([0-9]*\\).*/\\1/p" "$d/jail.info" 2>/dev/null); i=$((i + 1)); [ -n "$c" ] || sleep 0.05
  done
  [ -n "$c" ] || exit 0
  while [ -d "$d/workspace" ] && kill -0 "$c" 2>/dev/null; do sleep 2; done
  kill -9 "$c" 2>/dev/null
' sh "$dir" "$b" "$@" </dev/null >/dev/null 2>&1 &
i=0 c=
while [ -z "$c" ] && [ $i -lt 200 ]; do
  c=$(sed -n 's/.*"child-pid": *\\([0-9]*\\).*/\\1/p' "$dir/jail.info" 2>/dev/null); i=$((i + 1)); [ -n "$c" ] || sleep 0.05
done
[ -n "$c" ] || { cat "$dir/jail.err" >&2 2>/dev/null; echo "bubblewrap did not start" >&2; exit 4; }
o=
[ "$net" = 2 ] && o=$(sed -n 's/.*"child-pid": *\\([0-9]*\\).*/\\1/p' "$dir/jail.outer" 2>/dev/null)
printf '%s\\n%s\\n%s\\n%s\\n%s\\n%s\\n%s\\n' "$c" "$(readlink "/proc/$c/ns/pid")" "$n" "$p" "$o" "$h" "$e"`;

/**
 * Start the sandbox's jail. Resolves undefined when the host has no bubblewrap (or nsenter or
 * setpriv), with the reason; throws when it has them but they fail.
 */
export async function startJail(
  conn: SshConnection,
  opts: {
    dir: string;
    root: string;
    ownNetwork: boolean;
    /** With a network allowlist: the jail's /etc/hosts. */
    egressHosts?: string | undefined;
    /** With TLS termination: the sandbox's CA certificate, which the jail trusts (TRUST_DIR). */
    trustCa?: string | undefined;
    context: ErrorContext;
  },
): Promise<JailInfo | string> {
  const net = opts.egressHosts !== undefined ? '2' : opts.ownNetwork ? '1' : '0';
  const r = await conn.run(
    `sh -c ${quoteAll([START, 'sh', opts.dir, opts.root, net, opts.egressHosts ?? '', EGRESS_RESOLV_CONF, opts.trustCa ?? ''])}`,
    { context: opts.context },
  );
  const stderr = r.stderr.toString('utf8').trim();
  if (r.code === MISSING_TOOLS) return stderr;
  const [pid, pidNamespace, nsenter, setpriv, outer, hidden, env] = r.stdout.toString('utf8').split('\n');
  if (
    r.code !== 0 ||
    !pid ||
    !/^pid:\[\d+\]$/.test(pidNamespace ?? '') ||
    !nsenter ||
    !setpriv ||
    (net === '2' && !/^\d+$/.test(outer ?? ''))
  )
    throw new SandboxUnavailableError(
      `cannot start the sandbox's bubblewrap jail on the host: ${stderr || `exit ${r.code}`} (are unprivileged user namespaces allowed there?)`,
      opts.context,
    );
  return {
    pid: Number(pid),
    pidNamespace: pidNamespace!,
    nsenter,
    setpriv,
    ownNetwork: opts.ownNetwork,
    hidden: hidden && env ? { sh: `${hidden}/sh`, setsid: `${hidden}/setsid`, env } : undefined,
    ...(net === '2' ? { outerPid: Number(outer) } : {}),
  };
}

/** Shell text: true when the jail's init is still the process the pid names. */
export function jailAliveTest(jail: JailInfo): string {
  return `[ "$(readlink /proc/${jail.pid}/ns/pid 2>/dev/null)" = ${quote(jail.pidNamespace)} ]`;
}

/** The words that enter the jail and set no_new_privs, to put after `env -i ...` (so nothing in the jail carries the login's environment). */
export function enterJailWords(jail: JailInfo): string[] {
  // With an allowlist, two steps: the network namespace belongs to the outer user namespace,
  // entered first (as its root, the login user), and from there the jail's child one.
  const outer = jail.outerPid !== undefined ? [...enterNetworkWords(jail)] : [];
  const ns = ['-U', '-m', '-p', '-i', '-u', ...(jail.ownNetwork && !outer.length ? ['-n'] : [])];
  return [
    ...outer,
    jail.nsenter,
    '-t',
    String(jail.pid),
    ...ns,
    '--preserve-credentials',
    '--',
    jail.setpriv,
    '--no-new-privs',
    '--',
  ];
}

/** The words that enter only the allowlist's network namespace, as root of its user namespace. */
export function enterNetworkWords(jail: JailInfo): string[] {
  return [jail.nsenter, '-t', String(jail.outerPid), '-U', '-n', '--preserve-credentials', '--'];
}

/** Shell text that ends the jail (and so every process in it); quiet if it is gone already. */
export function endJailCommand(jail: JailInfo): string {
  return `if ${jailAliveTest(jail)}; then kill -9 ${jail.pid}; fi; true`;
}

/**
 * Shell text that runs `script` with `args` in the jail, with a cleared environment, as a
 * process of the jail's own (so it sees the jail's /proc and pid numbers); exit 9 if the jail is gone.
 */
export function inJailCommand(jail: JailInfo, script: string, args: readonly string[]): string {
  return `if ${jailAliveTest(jail)}; then exec env -i PATH=/usr/bin:/bin LC_ALL=C ${quoteAll(enterJailWords(jail))} /bin/sh -c ${quoteAll([script, 'sh', ...args])}; fi; exit 9`;
}

/**
 * Files of a jailed sandbox go through the jail, not SFTP: SFTP resolves paths as the login
 * user sees the host, so a symlink the sandbox made would lead readFile into another sandbox.
 */
export class JailFiles {
  readonly #conn: SshConnection;
  readonly #jail: JailInfo;
  readonly #context: ErrorContext;

  constructor(conn: SshConnection, jail: JailInfo, context: ErrorContext) {
    this.#conn = conn;
    this.#jail = jail;
    this.#context = context;
  }

  async read(path: string, maxBytes: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const context = { ...this.#context, operation: 'readFile', subject: path };
    const r = await this.#run(READ_FILE_SCRIPT, [path, String(maxBytes)], signal, context);
    this.#checkJail(r, context);
    return readScriptResult(r, path, maxBytes, context);
  }

  async write(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const context = { ...this.#context, operation: 'writeFile', subject: path };
    // Streamed down the channel's stdin with backpressure, so a drop mid-upload fails it.
    const { channel, link, exit } = await this.#conn.exec(
      this.#command(WRITE_FILE_SCRIPT, [path, mode === undefined ? '' : mode.toString(8)]),
      { signal, context },
    );
    channel.stderr.resume();
    channel.resume();
    const onAbort = () => channel.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    let status: Awaited<typeof exit>;
    try {
      for await (const chunk of data) {
        if (link.dead || channel.destroyed) break;
        if (!channel.write(chunk)) await untilDrained(channel);
      }
      channel.end();
      status = await exit;
    } catch (error) {
      channel.close();
      throw this.#conn.failure(link, error, 'writing a file', context);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (!status) {
      signal?.throwIfAborted();
      throw this.#conn.failure(
        link,
        new Error('the channel closed without an exit status'),
        'writing a file',
        context,
      );
    }
    // Only the exit status says what went wrong (a login script may print on stderr).
    const run = { code: status.code, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
    this.#checkJail(run, context);
    checkFileScript(run, path, context);
  }

  #command(script: string, args: string[]): string {
    return inJailCommand(this.#jail, script, args);
  }

  #run(script: string, args: string[], signal: AbortSignal | undefined, context: ErrorContext) {
    return this.#conn.run(this.#command(script, args), { signal, context });
  }

  /** Exit 9 from a file script: the jail it entered is gone. */
  #checkJail(r: { code: number | null }, context: ErrorContext): void {
    if (r.code === 9)
      throw new SandboxUnavailableError(
        "the sandbox's jail on the host is gone (killed, or the host rebooted)",
        context,
      );
  }
}

/** Seconds a freeze waits for the jail's processes to stop. */
const FREEZE_TIMEOUT_S = 10;

// Stops every process of the jail's PID namespace but its init; passes repeat until one finds
// nothing new (a fork that beat its parent's stop shows up in the next), each waiting for what
// it signalled to be stopped. Prints the pids it stopped, also when it gives up (exit 5).
// A process asleep in vfork (state D) whose child was stopped before its exec never stops
// (dash runs commands through vfork); it cannot run until that child does, so after 200 ms it
// counts as stopped when a stopped child of it still runs its program. Core's stopProcesses
// does the same for the jails on this host.
const FREEZE = `ns=$1 init=$2 end=$(( $(date +%s) + $3 ))
# Namespaces are compared by inode ([ -ef ], a builtin), not by a readlink process for each of
# the host's processes: first make sure the reference is still the jail's.
r=/proc/$init/ns/pid
[ "$(readlink "$r" 2>/dev/null)" = "$ns" ] || exit 9
stopped=' '
held() {
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  for c in $stopped; do
    st= pp=
    while read -r k v _; do case $k in State:) st=$v ;; PPid:) pp=$v; break ;; esac; done < "/proc/$c/status" 2>/dev/null
    [ "$pp" = "$1" ] && case "$st" in T | t) [ "$(readlink "/proc/$c/exe" 2>/dev/null)" = "$exe" ] && return 0 ;; esac
  done
  return 1
}
while :; do
  fresh=
  for d in /proc/[0-9]*; do
    p=\${d#/proc/}
    [ "$p" != "$init" ] && [ -O "$d" ] || continue
    case "$stopped" in *" $p "*) continue ;; esac
    [ "$d/ns/pid" -ef "$r" ] || continue
    kill -s STOP "$p" 2>/dev/null
    stopped="$stopped$p " fresh="$fresh $p"
  done
  [ -n "$fresh" ] || break
  for p in $fresh; do
    asleep=0
    while :; do
      s=
      while read -r k v _; do [ "$k" = State: ] && { s=$v; break; }; done < "/proc/$p/status" 2>/dev/null
      case "$s" in
        T | t | Z | X | '') break ;;
        D) asleep=$((asleep + 1)); [ $asleep -ge 20 ] && held "$p" && break ;;
        *) asleep=0 ;;
      esac
      [ "$(date +%s)" -lt "$end" ] || { echo "$stopped"; exit 5; }
      sleep 0.01
    done
  done
done
# An nsenter into the jail (on the host's side) stops itself once its child has stopped, and
# continues that child when it is continued: wait for it to stop, so the thaw can reach it.
for d in /proc/[0-9]*; do
  p=\${d#/proc/}
  [ "$p" != "$init" ] && [ -O "$d" ] || continue
  case "$stopped" in *" $p "*) continue ;; esac
  [ "$d/ns/pid_for_children" -ef "$r" ] || continue
  while :; do
    s=
    while read -r k v _; do [ "$k" = State: ] && { s=$v; break; }; done < "$d/status" 2>/dev/null
    case "$s" in T | t | Z | X | '') break ;; esac
    [ "$(date +%s)" -lt "$end" ] || { echo "$stopped"; exit 5; }
    sleep 0.01
  done
  stopped="$stopped$p "
done
echo "$stopped"`;

// Continues what FREEZE stopped (the jail's processes first, then the nsenters that wait for
// them), and only what is still the jail's.
const THAW = `ns=$1; shift
for p; do
  [ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" = "$ns" ] || [ "$(readlink "/proc/$p/ns/pid_for_children" 2>/dev/null)" = "$ns" ] || continue
  kill -s CONT "$p" 2>/dev/null
done; true`;

/**
 * Stop every process of the jail (as the login user, who owns them), for a checkpoint or a
 * restore that no sandbox process may race. Resolves the pids to give to thawJail. On a
 * timeout, those it stopped are continued before it throws.
 */
export async function freezeJail(
  conn: SshConnection,
  jail: JailInfo,
  context: ErrorContext,
): Promise<number[]> {
  const r = await conn.run(
    `if ${jailAliveTest(jail)}; then sh -c ${quoteAll([FREEZE, 'sh', jail.pidNamespace, String(jail.pid), String(FREEZE_TIMEOUT_S)])}; else exit 9; fi`,
    { control: true, context },
  );
  const pids = r.stdout
    .toString('utf8')
    .trim()
    .split(/\s+/)
    .filter((p) => /^\d+$/.test(p))
    .map(Number);
  if (r.code === 0) return pids;
  await thawJail(conn, jail, pids, context).catch(() => {});
  throw new SandboxUnavailableError(
    r.code === 9
      ? "the sandbox's jail on the host is gone (killed, or the host rebooted)"
      : r.code === 5
        ? `the sandbox's processes did not stop within ${FREEZE_TIMEOUT_S} s`
        : `cannot freeze the sandbox's jail: ${r.stderr.toString('utf8').trim() || `exit ${r.code}`}`,
    context,
  );
}

/** Continue the processes freezeJail stopped. */
export async function thawJail(
  conn: SshConnection,
  jail: JailInfo,
  pids: readonly number[],
  context: ErrorContext,
): Promise<void> {
  if (pids.length === 0) return;
  await conn.check(`sh -c ${quoteAll([THAW, 'sh', jail.pidNamespace, ...pids.map(String)])}`, {
    control: true,
    context,
  });
}
