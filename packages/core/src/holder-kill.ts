/**
 * The shell script that ends a command and whoever still holds its output, for backends that
 * signal from a shell beside the command (a container exec, an SSH login, a jail entered with
 * nsenter). A process that left the command's process group (its own `setsid`) but kept the
 * command's stdout or stderr is still the command's: the script finds it by those pipes.
 *
 * Pipes are named by `device:inode` as `stat -L -c %d:%i /proc/<pid>/fd/<n>` prints them. The
 * script is POSIX sh and needs `stat` (GNU or BusyBox) and a /proc.
 */

/**
 * Arguments: signal name (no `SIG`), pgid (or `0`: no group to signal), a PID namespace
 * (`pid:[inode]`, or `''` for any), then candidate pipe sets from {@link holderPipeSet}.
 *
 * It signals the group (or, before `setsid` ran, the process itself), then every process in the
 * namespace that holds one of the pipes of the first set whose `match` is the group leader's
 * parent (a session's runner), or `!` (taken as is). Spared pids (a wrapper, a runner, sshd)
 * hold those pipes too and must live to report the command's end; so must their children (the
 * shell a runner keeps waiting; the group leader, whom the group kill reaches anyway).
 */
export const HOLDER_KILL_SCRIPT = `s=$1 g=$2 ns=$3; shift 3
pp=
if [ "$g" != 0 ]; then
  if read -r t </proc/"$g"/stat; then t=\${t##*) }; pp=\${t#* }; pp=\${pp%% *}; fi 2>/dev/null
  kill -"$s" -"$g" 2>/dev/null || kill -"$s" "$g" 2>/dev/null
fi
o= ids=
for e; do
  m=\${e%%/*} r=\${e#*/}
  case $m in
    '!'|"$pp") o=,\${r%%=*},; ids=\${r#*=}; break ;;
  esac
done
[ -n "$ids" ] || exit 0
IFS=,; set -- $ids; IFS=' '
stat -L -c '%d:%i %n' /proc/[0-9]*/fd/* 2>/dev/null | while read -r id f; do
  for w; do
    [ "$id" = "$w" ] || continue
    p=\${f#/proc/}; p=\${p%%/*} q=
    [ "$p" != "$$" ] || continue
    [ -z "$ns" ] || [ "$(readlink /proc/"$p"/ns/pid 2>/dev/null)" = "$ns" ] || continue
    if read -r t </proc/"$p"/stat; then t=\${t##*) }; q=\${t#* }; q=\${q%% *}; fi 2>/dev/null
    case $o in *,"$p",*|*,"$q",*) ;; *) kill -"$s" "$p" 2>/dev/null ;; esac
  done
done
exit 0`;

/**
 * One candidate pipe set for {@link HOLDER_KILL_SCRIPT}: used when the group leader's parent is
 * `match` (`'!'`: always), sparing `spared` and their children; `pipes` as `device:inode`.
 */
export function holderPipeSet(
  match: number | '!',
  spared: readonly number[],
  pipes: readonly string[],
): string {
  for (const p of pipes)
    if (!/^\d+:\d+$/.test(p)) throw new Error(`not a device:inode pipe id: ${JSON.stringify(p)}`);
  return `${match}/${spared.join(',')}=${pipes.join(',')}`;
}

/**
 * For a command started in the background by a wrapper in a directory of its own (`$1`) that
 * holds its group leader's pid in `$1/pid` and its output in `$1/out` and `$1/err` (files or
 * named pipes): signal `$2` (a name without SIG) to its process group, then to any process that
 * left the group but still writes to that output. It waits up to 5 s for the pid file (a kill
 * may race the start).
 */
export const OUTPUT_DIR_KILL_SCRIPT = [
  'f=$1/pid; k=0',
  'while [ ! -s "$f" ] && [ $k -lt 50 ]; do sleep 0.1; k=$((k+1)); done',
  '[ -s "$f" ] && kill -s "$2" -"$(cat "$f")" 2>/dev/null',
  'for l in /proc/[0-9]*/fd/1 /proc/[0-9]*/fd/2; do',
  ' case "$(readlink "$l" 2>/dev/null)" in "$1/out"|"$1/err") p=${l#/proc/}; kill -s "$2" "${p%%/*}" 2>/dev/null;; esac',
  'done; exit 0',
].join('\n');
