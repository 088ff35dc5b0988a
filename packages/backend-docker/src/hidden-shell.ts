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
import type { RunnerPrograms } from '@agentbox/core/backend';
import { type ExecTarget, runExec } from './exec.js';

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
): Promise<HiddenShell> {
  const open = (why: string): HiddenShell =>
    sandboxUid === 0 || sandboxUid === OWNER
      ? {
          kind: 'none',
          reason: `${why}, and the sandbox user (uid ${sandboxUid}) could reach into session shells through /proc: every command takes the plain path`,
        }
      : { kind: 'image' };
  if (sandboxUid === OWNER) return open(`the sandbox user owns ${DIR}`);
  const r = await runExec(target, {
    argv: ['/bin/sh', '-c', INSTALL, 'sh', DIR, setsid],
    user: `${OWNER}:${OWNER}`,
  }).catch(() => undefined);
  const env = r?.stdout.toString('utf8').trim();
  if (r?.exitCode !== 0 || !env?.startsWith('/'))
    return open(`the execute-only shell could not be installed in ${DIR} (exit ${r?.exitCode ?? 'unknown'})`);
  const programs = { sh: `${DIR}/sh`, setsid: `${DIR}/setsid`, env };
  const probe = await runExec(target, { argv: [programs.sh, '-c', 'exit 0'], user: sandboxUser }).catch(
    () => undefined,
  );
  if (probe?.exitCode === 0) return { kind: 'hidden', programs };
  return {
    kind: 'none',
    reason: `the container's runtime does not run execute-only programs (exit ${probe?.exitCode ?? 'unknown'} running ${programs.sh}), so session shells would be open to the sandbox user through /proc: every command takes the plain path`,
  };
}
