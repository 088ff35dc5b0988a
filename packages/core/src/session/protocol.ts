/**
 * The wire protocol between a session and its runner: the runner script (POSIX sh only), the
 * requests written to it, and the markers it writes back.
 *
 * A marker is one line: the session's nonce, a type letter, a sequence number, fields, `\n`.
 * The nonce is random per session and starts with the byte 0x1E, so ordinary text never
 * looks like the start of one. The runner keeps it in an unexported variable; the shells that
 * become commands never hold it once they exec (a mode-1 request prints one marker with it).
 */
import { randomBytes } from 'node:crypto';
import type { StartRequest } from '../process.js';
import { shellQuote } from '../shell-quote.js';
import { isSignalName, signalName, signalNumber } from '../signals.js';

/**
 * Marker types: B ready (probe result, runner pid), S a command shell is waiting (its pid),
 * I it has read its request and stdin is the command's from here on, C the working directory
 * failed (errno), E ended (status, lingering), K kill done, W liveness answer (dead pids).
 */
export type MarkerType = 'B' | 'S' | 'I' | 'C' | 'E' | 'K' | 'W';

export interface Marker {
  type: MarkerType;
  seq: number;
  fields: string[];
}

export function newNonce(): string {
  return `\x1eab${randomBytes(16).toString('hex')}`;
}

/** Shared start of both scripts: fds 3 and 4 keep the session's stdout and stderr, fd 2 is muted. */
function prologue(nonce: string): string[] {
  return [
    // The runner's own chatter ("Killed") must never land in a command's stderr.
    'exec 3>&1 4>&2 2>/dev/null',
    // bash-as-sh exits when a foreground child dies of SIGINT unless it traps it; a trap (unlike
    // an ignored signal) is reset to the default in every child.
    'trap : INT QUIT',
    'unset PWD OLDPWD SHLVL',
    `N=${shellQuote(nonce)}`,
  ];
}

/**
 * Programs a runner execs for its waiting shells instead of `setsid` and `sh` from PATH: copies
 * the sandbox user may execute but not read, so that (like the runner, started the same way)
 * they are not dumpable and no process of that user can open their fds or read their memory.
 */
export interface RunnerPrograms {
  sh: string;
  setsid: string;
  /**
   * A readable `env` every command is exec'd through. A multi-call binary (BusyBox) runs its
   * applets by exec'ing itself again: from the hidden `sh`, a command would be hidden too, and
   * the checks that find what a command left holding its output could not see it.
   */
  env: string;
}

/**
 * The runner of a command session, written once to the shell's stdin.
 *
 * It keeps one fresh shell waiting for the next command: a forked child (a command
 * substitution: a foreground child with default signal dispositions, whose pid the runner
 * learns through the capture pipe) finds its pid by entering /proc/self (a builtin, where
 * reading a file costs a syscall a byte), announces it (S) and execs `setsid sh`, which makes
 * it the leader of a new process group and session. That shell reads exactly one request
 * from the session's stdin — a line of shell code built by {@link commandRequest} that enters
 * `cwd`, exports `env` and execs the command — so a command costs one exec once it is asked
 * for (with `programs`, a fork and an exec: see {@link commandRequest}): the fork and `setsid`
 * happened while the session was idle. Nothing a command does can
 * touch the runner's directory or variables, nor the next command's shell.
 *
 * When the command exits, the runner checks whether anything but zombies is left in its
 * process group (`kill -0 -pgid`, then /proc only if something is): such processes may
 * still hold the session's stdout or stderr, so the runner reports it (E ... 1) and exits,
 * and the client reads both streams to their real end, as it would read a pipe. A command
 * given the session's stdin (mode 1) is the last one too. Otherwise the next shell is
 * started at once. With `programs` (hidden holders), every process is checked, not only those
 * born during the command: one that opened the session's pipes through /proc meanwhile retires it.
 */
export function runnerScript(nonce: string, programs?: RunnerPrograms): string {
  // Hidden holders cannot be told from intruders by their fds (they show none): every process
  // that shows the session's pipes after a command is one too many.
  const pidsBefore = programs ? '__b=' : 'set -- /proc/[0-9]*; __b="$*"';
  const find = programs
    ? [
        `__S=${shellQuote(programs.setsid)} __H=${shellQuote(programs.sh)} __ok=1`,
        '[ -x "$__S" ] && [ -x "$__H" ] || __ok=0',
      ]
    : ['__S=$(command -v setsid) __H=$(command -v sh) __ok=1', '[ -n "$__S" ] && [ -n "$__H" ] || __ok=0'];
  return [
    ...prologue(nonce),
    // Does anything still hold the session's streams: a live (not zombie) process of group $1, or
    // one born during the command that left the group? Then this session retires after it.
    'L() {',
    '  __g=$1',
    '  if kill -0 -"$__g"; then',
    '  for __f in /proc/[0-9]*/stat; do',
    '    read -r __t <"$__f" || continue',
    '    __t=${__t##*) }',
    '    set -- $__t',
    '    [ "$3" = "$__g" ] && [ "$1" != Z ] && return 0',
    '  done',
    '  fi',
    '  for __p in /proc/[0-9]*; do',
    '    case " $__b " in *" $__p "*) continue ;; esac',
    '    [ "$__p" = /proc/$$ ] && continue',
    '    for __f in "$__p"/fd/[0-9]*; do',
    '      { [ "$__f" -ef /proc/$$/fd/3 ] || [ "$__f" -ef /proc/$$/fd/4 ]; } && return 0',
    '    done',
    '  done',
    '  return 1',
    '}',
    ...find,
    'cd -P /proc/self && [ "${PWD##*/}" -gt 0 ] && cd / || __ok=0',
    `printf '%sB0 %s %s\\n' "$N" "$__ok" "$$"`,
    `printf '%sB0\\n' "$N" >&4`,
    '[ "$__ok" = 1 ] || exit 0',
    '__q=0',
    'while :; do',
    '  __q=$((__q + 1))',
    `  ${pidsBefore}`,
    '  __o=$(',
    '    cd -P /proc/self || exit 125',
    `    printf '%s' "\${PWD##*/}"`,
    `    printf '%sS%s %s\\n' "$N" "$__q" "\${PWD##*/}" >&3`,
    '    cd /',
    '    exec "$__S" "$__H" 2>&4 4>&-',
    '  )',
    '  __x=$?',
    // The request writes `x<mode>` (and an errno if cwd failed) to the capture pipe: without it
    // the shell ended before reading one (stdin closed, or killed), and so does this session.
    '  case $__o in *x*) ;; *) exit 0 ;; esac',
    '  __p=${__o%%x*} __r=${__o#*x}',
    '  __m=${__r%% *} __l=0',
    `  [ "$__r" = "$__m" ] || printf '%sC%s %s\\n' "$N" "$__q" "\${__r#* }"`,
    '  if L "$__p"; then',
    // A tree just killed needs a moment to be gone; a live one is left running.
    '    __i=0',
    '    while [ "$__x" -gt 128 ] && [ $__i -lt 20 ] && L "$__p"; do sleep 0.01; __i=$((__i + 1)); done',
    '    L "$__p" && __l=1',
    '  fi',
    // stderr's end first: it then tends to arrive with stdout's rather than after it.
    `  printf '%sE%s %s %s\\n' "$N" "$__q" "$__x" "$__l" >&4`,
    `  printf '%sE%s %s %s\\n' "$N" "$__q" "$__x" "$__l"`,
    '  [ "$__m$__l" = 00 ] || exit 0',
    'done',
    '',
  ].join('\n');
}

/**
 * The runner of the control session: `K signal pgid id` signals a process group (or, before
 * it has one, the process); `W id pid...` says which session runners are gone (a runner can
 * die while what it started keeps its streams open, so the stream alone would not say).
 */
export function controlScript(nonce: string): string {
  return [
    ...prologue(nonce),
    'K() {',
    '  kill -"$1" -"$2" || kill -"$1" "$2"',
    `  printf '%sK%s\\n' "$N" "$3"`,
    '}',
    // `W id pid...`: which of these runners are gone?
    'W() {',
    '  __i=$1 __d=; shift',
    '  for __p; do kill -0 "$__p" || __d="$__d $__p"; done',
    `  printf '%sW%s%s\\n' "$N" "$__i" "$__d"`,
    '}',
    `printf '%sB0 1 %s\\n' "$N" "$$"`,
    `printf '%sB0\\n' "$N" >&4`,
    '',
  ].join('\n');
}

/** Commands the waiting shell cannot exec as asked (`exec` would read a leading `-` as an option). */
export function sessionCanRun(req: StartRequest, programs?: RunnerPrograms): boolean {
  const program = req.argv[0];
  // Through `env`, a program name with `=` would be read as an assignment.
  return program !== undefined && !program.startsWith('-') && !(programs && program.includes('='));
}

/**
 * The one line the waiting command shell reads. It reports `x<mode>` to the runner, enters
 * `cwd` (or reports why it cannot), points stdout at the session's stdout, gives the command
 * /dev/null (mode 0) or the session's stdin (mode 1, announced with I so the client knows the
 * shell has stopped reading it), exports exactly `env` over the base environment and execs
 * (with hidden programs, in a forked child it waits for: see below).
 */
export function commandRequest(
  seq: number,
  stdinMode: 0 | 1,
  nonce: string,
  runnerPid: number,
  req: StartRequest,
  programs?: RunnerPrograms,
): string {
  const cwd = shellQuote(req.cwd);
  const parts = [
    // A shell orphaned by its runner's death runs nothing: without `x` the session ends.
    `kill -0 ${runnerPid} 2>/dev/null || exit 0`,
    `printf x${stdinMode}`,
    `cd -P ${cwd} 2>/dev/null || { if [ ! -e ${cwd} ]; then printf ' ENOENT'; elif [ ! -d ${cwd} ]; then printf ' ENOTDIR'; else printf ' EACCES'; fi; exit 0; }`,
    stdinMode === 0 ? 'exec >&3 3>&- </dev/null' : 'exec >&3 3>&-',
  ];
  if (stdinMode === 1) parts.push(`printf '%sI${seq}\\n' ${shellQuote(nonce)}`);
  parts.push('unset PWD OLDPWD SHLVL');
  for (const [name, value] of Object.entries(req.env)) parts.push(`export ${shellQuote(`${name}=${value}`)}`);
  if (programs)
    // A process of its own: exec'd in place, the command would take over the pid of this waiting
    // shell, which any process of the sandbox could note while it was hidden (undumpable), then
    // reach through /proc once it runs the readable program, and write into its result. A fork's
    // pid is new, so nothing noted earlier names it. The hidden shell waits and passes the status
    // on; it catches the signals a kill of the group sends (the child starts with them at their
    // defaults), so a command that handles one and exits in its own time reports its own status.
    parts.push(
      `trap : ${CAUGHT_BY_WAITER}; (exec ${[programs.env, ...req.argv].map(shellQuote).join(' ')}); exit $?`,
    );
  else parts.push(`exec ${req.argv.map(shellQuote).join(' ')}`);
  return `${parts.join('; ')}\n`;
}

/** Signals whose default ends a process, by names every sh knows: the waiting parent outlives them. */
const CAUGHT_BY_WAITER = 'HUP INT QUIT ABRT USR1 USR2 PIPE ALRM TERM';

/** Signal a command's process group. `signal` is a Node signal name, checked by the caller. */
export function killRequest(id: number, signal: string, pgid: number): string {
  return `K ${signal.replace(/^SIG/, '')} ${pgid} ${id}\n`;
}

/** Ask which of these runner pids are gone. */
export function livenessRequest(id: number, pids: readonly number[]): string {
  return `W ${id} ${pids.join(' ')}\n`;
}

/** Parse the text of a marker line after the nonce (without the newline). */
export function parseMarker(text: string): Marker | undefined {
  const match = /^([BSICEKW])(\d+)(?: (.*))?$/s.exec(text);
  if (!match) return undefined;
  return { type: match[1] as MarkerType, seq: Number(match[2]), fields: match[3] ? match[3].split(' ') : [] };
}

/** Names the control shell accepts (everything a shell's `kill` knows by name). */
export function isKnownSignal(name: string): boolean {
  return isSignalName(name);
}

/** The exit of a command killed by `signal` (a name the table knows), as a shell reports it. */
export function exitFromSignal(signal: string): { exitCode: number; signal: string } {
  return { exitCode: 128 + signalNumber(signal), signal };
}

/**
 * A shell status as an exit: 128 + n is reported as signal n. The shell cannot tell a death
 * by SIGKILL from `exit 137`, so the exit code is always the shell's number and only the
 * signal name can be wrong, for a command that exits with 129..159 by itself.
 */
export function exitFromStatus(status: number): { exitCode: number; signal: string | null } {
  const n = status - 128;
  return { exitCode: status, signal: signalName(n) };
}
