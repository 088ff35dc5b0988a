/**
 * Session shells the sandbox cannot reach into. A process of the sandbox user could open
 * `/proc/<pid>/fd/N` of a session's long-lived processes (its exec wrapper, runner and waiting
 * shell), which hold the session's streams, and write into later commands' results and requests.
 * The kernel refuses that for a process that is not dumpable, and a process that execs a program
 * its user may run but not read is not dumpable. So root copies the image's `sh` and `setsid`,
 * once per container, to execute-only files in a root-owned directory on the container's /dev
 * (its own tmpfs, writable by root without any capability, not noexec), and the sessions run
 * from those copies. A command itself is exec'd through the image's readable `env`, so it and
 * what it starts are ordinary processes of the sandbox user.
 */
import type { RunnerPrograms } from '@agentbox/core/backend';
import { type ExecTarget, runExec } from './exec.js';

/** Where the copies live. */
const DIR = '/dev/.agentbox';

// Args: dir, path of setsid. Idempotent: a directory only root can write keeps what it holds.
// Prints the path of a readable env (a path: in BusyBox sh, `command -v` names applets bare).
const INSTALL = `d=$1 s=$2 e=
for p in /usr/bin /bin; do [ -x "$p/env" ] && { e=$p/env; break; }; done
[ -n "$e" ] || exit 5
umask 077
[ -d "$d" ] || mkdir -m 0711 "$d" || exit 3
for n in sh setsid; do
  [ -f "$d/$n" ] && continue
  if [ "$n" = sh ]; then src=/bin/sh; else src=$s; fi
  cp "$src" "$d/.$n" && chmod 0111 "$d/.$n" && mv -f "$d/.$n" "$d/$n" || exit 4
done
echo "$e"`;

/** What the sessions run from: the hidden copies, the image's own shell, or nothing at all. */
export type HiddenShell =
  | { kind: 'hidden'; programs: RunnerPrograms }
  | { kind: 'image' }
  /** The copies cannot run here, and without them sessions would be open to the sandbox user. */
  | { kind: 'none'; reason: string };

/**
 * Install the copies (as root in the container), then run one as the sandbox user: gVisor, for
 * one, refuses to execute a program its caller cannot read, and there a non-root sandbox gets no
 * sessions rather than sessions its user can write into. `image` where the copies would not
 * help (a root sandbox user could chmod them back) or root could not install them.
 */
export async function installHiddenShell(
  target: ExecTarget,
  setsid: string,
  sandboxUid: number,
  sandboxUser: string,
): Promise<HiddenShell> {
  if (sandboxUid === 0) return { kind: 'image' };
  const r = await runExec(target, { argv: ['/bin/sh', '-c', INSTALL, 'sh', DIR, setsid], user: '0' }).catch(
    () => undefined,
  );
  const env = r?.stdout.toString('utf8').trim();
  if (r?.exitCode !== 0 || !env?.startsWith('/')) return { kind: 'image' };
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
