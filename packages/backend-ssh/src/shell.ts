/**
 * The POSIX shell text this backend sends to the remote host: quoting, and the small wrapper
 * every command runs through. The wrapper changes to the working directory (reporting a
 * missing one instead of running the command), reports the command's process group on a side
 * channel, and replaces itself with the command under a cleared environment (`env -i`), so the
 * exit status and a deadly signal reach us exactly as the command produced them.
 */
import { InvalidArgumentError } from '@agentbox/core';
import { type StartRequest, shellQuote, shellQuoteAll } from '@agentbox/core/backend';
import { enterJailWords, type JailInfo, jailAliveTest } from './jail.js';

/** Core's one quoting function, under the names this package uses (text, sent as UTF-8). */
export const quote = shellQuote;
export const quoteAll = shellQuoteAll;

/** How the wrapper ended before the command started, or the process group the command leads. */
export type WrapperStatus =
  | {
      kind: 'started';
      pgid: number;
      /**
       * Without a jail: the pid of the wrapper's parent (sshd's session process, which holds the
       * other ends of the output pipes). In a jail: the command's pid as the jail numbers it.
       */
      peer: number;
      /** The command's stdout and stderr pipes as `device:inode` (empty where `stat` failed). */
      pipes: string[];
    }
  | { kind: 'cwd-missing' | 'cwd-not-a-directory' | 'cwd-denied' | 'jail-gone' };

/**
 * The wrapper script for one command. `marker` is a per-command random token: the wrapper
 * prints `<marker>` as the first line of stdout and `<marker> ok <pgid>` (or `<marker> <failure>`)
 * as the first line of stderr; the reader strips both lines, and anything a login script printed
 * before them.
 *
 * sshd runs each exec request in a new session, so the shell that runs this script already leads
 * its own process group and `exec` keeps that pid: `kill -- -<pgid>` reaches the command and every
 * descendant that did not leave the group. Where the shell is not a group leader (checked through
 * /proc when there is one), `setsid` makes it one without forking.
 */
export function wrapperScript(req: StartRequest, marker: string, jail?: JailInfo): string {
  const cwd = quote(req.cwd);
  const assignments = Object.entries(req.env).map(([name, value]) => quote(`${name}=${value}`));
  // `env` takes any leading word with `=` as an assignment, so such a program runs through `sh`.
  const program = req.argv[0]!.includes('=') ? ['/bin/sh', '-c', 'exec "$@"', 'sh', ...req.argv] : req.argv;
  const groupCheck = `s= pp=0; if read -r _ _ _ pp g _ </proc/$$/stat 2>/dev/null && [ "$g" != "$$" ]; then s=setsid; fi`;
  // The output pipes, for a kill that must also reach a process that left the group but kept them.
  const pipes = 'i=$(PATH=/usr/bin:/bin stat -L -c %d:%i /proc/$$/fd/1 /proc/$$/fd/2 2>/dev/null)';
  if (jail) {
    // In a jail the working directory is checked, and the markers printed, inside it: the host's
    // view of that path is not the sandbox's. The group reported is the host's (this shell's pid,
    // kept by every exec), so the kill path signals it from the host. The environment is cleared
    // before entering, so no process in the jail ever carries the login's, even for an instant.
    // The wrapper runs as the hidden `sh` where the jail has one (jail.ts), so no jail process can
    // reach into a session shell even before it starts; `stat` then reads the pipes through its
    // own fds (copies of the wrapper's), as the wrapper's /proc entry is closed to it.
    const inner = [
      `cd -- "$2" 2>/dev/null || { if [ -d "$2" ]; then r=cwd-denied; elif [ -e "$2" ]; then r=cwd-not-a-directory; else r=cwd-missing; fi; printf '%s %s\\n' "$1" "$r" >&2; exit 111; }`,
      'exec 5>&1 6>&2; i=$(PATH=/usr/bin:/bin stat -L -c %d:%i /proc/self/fd/5 /proc/self/fd/6 2>/dev/null); exec 5>&- 6>&-',
      `printf '%s\\n' "$1"; printf '%s ok %s %s %s\\n' "$1" "$3" "$$" "$(echo $i)" >&2`,
      'shift 3; exec "$@"',
    ].join('\n');
    return [
      `${jailAliveTest(jail)} || { printf '%s %s\\n' ${marker} jail-gone >&2; exit 111; }`,
      groupCheck,
      `exec $s env -i ${assignments.join(' ')} ${quoteAll(enterJailWords(jail))} ${quote(jail.hidden?.sh ?? '/bin/sh')} -c ${quote(inner)} sh ${marker} ${cwd} "$$" ${quoteAll(program)}`,
    ].join('\n');
  }
  return [
    `cd -- ${cwd} 2>/dev/null || { if [ -d ${cwd} ]; then r=cwd-denied; elif [ -e ${cwd} ]; then r=cwd-not-a-directory; else r=cwd-missing; fi; printf '%s %s\\n' ${marker} "$r" >&2; exit 111; }`,
    groupCheck,
    pipes,
    `printf '%s\\n' ${marker}; printf '%s ok %s %s %s\\n' ${marker} "$$" "$pp" "$(echo $i)" >&2`,
    `exec $s env -i ${assignments.join(' ')} ${quoteAll(program)}`,
  ].join('\n');
}

/** Parse the status line the wrapper printed (without the marker). */
export function parseWrapperStatus(line: string): WrapperStatus | undefined {
  const ok = /^ok (\d+) (\d+) ?((?:\d+:\d+ ?)*)$/.exec(line);
  if (ok)
    return {
      kind: 'started',
      pgid: Number(ok[1]),
      peer: Number(ok[2]),
      pipes: ok[3]!.split(' ').filter(Boolean),
    };
  if (
    line === 'cwd-missing' ||
    line === 'cwd-not-a-directory' ||
    line === 'cwd-denied' ||
    line === 'jail-gone'
  )
    return { kind: line };
  return undefined;
}

/** `kill` for a whole process group; quiet when the group is already gone. */
export function killGroupCommand(pgid: number, signal: NodeJS.Signals): string {
  if (!Number.isInteger(pgid) || pgid <= 1)
    throw new InvalidArgumentError(`refusing to signal process group ${pgid}`, { operation: 'kill' });
  return `kill -s ${signal.replace(/^SIG/, '')} -- -${pgid} 2>/dev/null; true`;
}

/** A signal's name as the remote `kill` takes it (no `SIG`); only plain names get into shell text. */
export function signalWord(signal: string): string {
  const name = signal.replace(/^SIG/, '');
  if (!/^[A-Z0-9]+$/.test(name)) throw new Error(`refusing to send signal ${signal}`);
  return name;
}
