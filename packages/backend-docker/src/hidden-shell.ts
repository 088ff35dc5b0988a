/**
 * Session shells the sandbox cannot reach into. A process of the sandbox user could open
 * `/proc/<pid>/fd/N` of a session's long-lived processes (its exec wrapper, runner and waiting
 * shell), which hold the session's streams, and write into later commands' results and requests.
 * The kernel refuses that, to a process without CAP_SYS_PTRACE, for a process that is not
 * dumpable, and a process that execs a program its user may run but not read is not dumpable.
 * So the image's `sh` and `setsid` are copied to execute-only files on a tmpfs of their own,
 * mounted at container creation and owned by a uid no sandbox process has: with every capability
 * dropped, not even a root sandbox user may read, chmod or replace them, nor move the mount
 * point. The sessions and the plain path's wrappers run from those copies. A command itself is
 * exec'd through the image's readable `env`, so it and what it starts are ordinary processes.
 */

import type { Duplex } from 'node:stream';
import type { RunnerPrograms } from '@agentbox/core/backend';
import type Docker from 'dockerode';
import { DockerDemuxer } from './demux.js';
import { type ExecTarget, runExec } from './exec.js';
import { REAP } from './runtime.js';

/** Where the copies live: a tmpfs mount point. */
const DIR = '/dev/.agentbox';
/** Owns the copies: a uid of no sandbox user (the install runs as it). */
const OWNER = 65533;

/** The container's tmpfs for the copies (HostConfig.Tmpfs): only its owner may write it. */
export const HIDDEN_SHELL_TMPFS = {
  [DIR]: `rw,exec,nosuid,size=8m,mode=0711,uid=${OWNER},gid=${OWNER}`,
} as const;

// Args: dir, path of setsid. Idempotent. Prints the path of a readable env (a path: in BusyBox
// sh, `command -v` names applets bare).
const INSTALL = `d=$1 s=$2 e=
for p in /usr/bin /bin; do [ -x "$p/env" ] && { e=$p/env; break; }; done
[ -n "$e" ] || exit 5
umask 077
a=$(stat -L -c %d:%i /bin/sh 2>/dev/null) && [ "$a" = "$(stat -L -c %d:%i "$s" 2>/dev/null)" ] && one=1 || one=
for n in sh setsid; do
  [ -f "$d/$n" ] && continue
  if [ "$n" = sh ]; then cp /bin/sh "$d/.sh" && chmod 0111 "$d/.sh"
  # One program (BusyBox) for both: setsid is a link to the copy, whose pages then count once.
  elif [ -n "$one" ]; then ln -f "$d/sh" "$d/.setsid"
  else cp "$s" "$d/.setsid" && chmod 0111 "$d/.setsid"; fi && mv -f "$d/.$n" "$d/$n" || exit 4
done
echo "$e"`;

/** What the sessions run from: the hidden copies, the image's own shell, or nothing at all. */
export type HiddenShell =
  | { kind: 'hidden'; programs: RunnerPrograms }
  | { kind: 'image' }
  /** The copies cannot run here, and without them sessions would be open to the sandbox user. */
  | { kind: 'none'; reason: string };

/** The user PID 1 of a sandbox container runs as: the copies' owner, so it can make them. */
export const HIDDEN_SHELL_INIT_USER = `${OWNER}:${OWNER}`;

const ANNOUNCED = 'agentbox-hidden-shell';

/**
 * PID 1 of a sandbox container: install the copies (setsid found as the tools probe finds it),
 * say how that went on stdout, then reap. Doing it here, not in an exec after start, saves a
 * round trip on every open; `hiddenShellAnnounced` reads the line.
 */
export const HIDDEN_SHELL_INIT = [
  '/bin/sh',
  '-c',
  `trap 'exit 0' TERM INT
s=
IFS=:
for p in $PATH /usr/bin /bin /usr/sbin /sbin; do
  if [ -x "$p/setsid" ] && [ ! -d "$p/setsid" ]; then s=$p/setsid; break; fi
done
unset IFS
e=$(/bin/sh -c "$1" sh ${DIR} "$s")
printf '${ANNOUNCED} %s %s\n' "$?" "$e"
${REAP}`,
  'agentbox-init',
  INSTALL,
];

/** What PID 1 said of its install: its exit status and the env path it printed. */
export interface InstallOutcome {
  exitCode: number | undefined;
  env: string;
}

/**
 * Listen for PID 1's line: call before the container starts (an attach sees only what comes
 * after it), await after. Ends early, with an unknown status, if the container stops first or
 * nothing comes within `timeoutMs`; the attach is closed either way.
 */
export async function hiddenShellAnnounced(
  container: Docker.Container,
  timeoutMs = 10_000,
): Promise<() => Promise<InstallOutcome>> {
  const stream = (await container.attach({ stream: true, stdout: true, stderr: true })) as Duplex;
  let text = '';
  const outcome = new Promise<InstallOutcome>((resolve) => {
    const unknown = () => {
      clearTimeout(timer);
      resolve({ exitCode: undefined, env: '' });
    };
    const timer = setTimeout(unknown, timeoutMs);
    timer.unref();
    const demux = new DockerDemuxer((type, chunk) => {
      if (type !== 'stdout') return;
      text += chunk.toString('utf8');
      const m = new RegExp(`^${ANNOUNCED} (\\d+) (.*)\n`, 'm').exec(text);
      if (m) {
        clearTimeout(timer);
        resolve({ exitCode: Number(m[1]), env: m[2]!.trim() });
      }
    });
    stream.on('data', (chunk: Buffer) => demux.push(chunk));
    stream.on('end', unknown);
    stream.on('close', unknown);
    stream.on('error', unknown);
  });
  // Let go of the attach as soon as the line (or the end) is in, whether or not anyone asks.
  void outcome.finally(() => stream.destroy());
  return () => outcome;
}

/**
 * Install the copies (as their owner), then run one as the sandbox user: gVisor, for one,
 * refuses to execute a program its caller cannot read, and there the sandbox gets no sessions
 * rather than sessions its user can write into. Without the mount (a container made by an older
 * version) a non-root sandbox keeps the image's shell, as it did then; a root one gets no sessions.
 */
export async function installHiddenShell(
  target: ExecTarget,
  setsid: string,
  sandboxUid: number,
  sandboxUser: string,
  /** Runs the probe, or answers from what an earlier container of the same image and runtime said. */
  remembered: (probe: () => Promise<boolean>) => Promise<boolean> = (probe) => probe(),
  /** What PID 1's install said (a container made with HIDDEN_SHELL_INIT); else installed here. */
  installed?: () => Promise<InstallOutcome>,
): Promise<HiddenShell> {
  const open = (why: string): HiddenShell =>
    sandboxUid === 0 || sandboxUid === OWNER
      ? {
          kind: 'none',
          reason: `${why}, and the sandbox user (uid ${sandboxUid}) could reach into session shells through /proc: every command takes the plain path`,
        }
      : { kind: 'image' };
  if (sandboxUid === OWNER) return open(`the sandbox user owns ${DIR}`);
  const told = await installed?.();
  // PID 1 said nothing (it may have been slow): the install is idempotent, so do it here.
  const r =
    told?.exitCode !== undefined
      ? told
      : await runExec(target, {
          argv: ['/bin/sh', '-c', INSTALL, 'sh', DIR, setsid],
          user: HIDDEN_SHELL_INIT_USER,
        }).then(
          (done) => ({ exitCode: done.exitCode, env: done.stdout.toString('utf8').trim() }),
          () => undefined,
        );
  const env = r?.env;
  if (r?.exitCode !== 0 || !env?.startsWith('/'))
    return open(`the execute-only shell could not be installed in ${DIR} (exit ${r?.exitCode ?? 'unknown'})`);
  const programs = { sh: `${DIR}/sh`, setsid: `${DIR}/setsid`, env };
  let exit: number | undefined;
  const runs = await remembered(async () => {
    const probe = await runExec(target, { argv: [programs.sh, '-c', 'exit 0'], user: sandboxUser }).catch(
      () => undefined,
    );
    exit = probe?.exitCode;
    return exit === 0;
  });
  if (runs) return { kind: 'hidden', programs };
  return {
    kind: 'none',
    reason: `the container's runtime does not run execute-only programs (exit ${exit ?? 'unknown'} running ${programs.sh}), so session shells would be open to the sandbox user through /proc: every command takes the plain path`,
  };
}
