/**
 * What the ssh backend needs here: the host reachable and its key verified, the login accepted,
 * and on the host a POSIX `sh`, `setsid` and /proc (the fast path and kills use them) and a
 * root directory the login user can write. Whether a network allowlist can be enforced there
 * (bubblewrap and Node.js on the host) is reported too, as information.
 */
import type { DoctorCheck, DoctorReport } from '@agentbox/core';
import type { SshResolvedConfig } from './config.js';
import { SshConnection } from './connection.js';
import { sshEnforcement } from './sandbox.js';
import { quoteAll } from './shell.js';

/** One line per fact, `name<TAB>ok|no<TAB>detail`; the root is checked without being created. */
const PROBE = `root=$1
case "$root" in "~") root=$HOME ;; "~/"*) root="$HOME/\${root#"~/"}" ;; esac
printf 'uid\\tok\\t%s\\n' "$(id -u)"
command -v setsid >/dev/null 2>&1 && printf 'setsid\\tok\\t%s\\n' "$(command -v setsid)" || printf 'setsid\\tno\\tnot found: commands cannot get their own process group\\n'
[ -r /proc/self/stat ] && printf '/proc\\tok\\tmounted\\n' || printf '/proc\\tno\\tnot mounted: sweep and the fast path need it\\n'
if command -v bwrap >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then printf 'egress allowlist\\tok\\tavailable: bwrap and node (%s) on the host\\n' "$(command -v node)"
else printf 'egress allowlist\\tok\\tnot available (needed only for network allowlist): the host needs bubblewrap and Node.js for the egress forwarder\\n'; fi
d=$root
while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
if [ -d "$d" ] && [ -w "$d" ] && [ -x "$d" ]; then printf 'root directory\\tok\\twritable: %s\\n' "$d"
else printf 'root directory\\tno\\tnot a directory the login user can write: %s\\n' "$d"; fi`;

export async function doctorSsh(config: SshResolvedConfig, signal?: AbortSignal): Promise<DoctorReport> {
  const context = { backend: 'ssh', operation: 'doctor' };
  const conn = new SshConnection(config, context);
  const checks: DoctorCheck[] = [];
  let uid: number | undefined;
  try {
    const result = await conn.run(`sh -c ${quoteAll([PROBE, 'sh', config.root])}`, { signal, context });
    checks.push({
      name: 'connection',
      ok: true,
      detail: `${conn.target}: host key verified, login accepted`,
    });
    checks.push({
      name: 'sh',
      ok: result.code === 0,
      detail: result.code === 0 ? 'runs' : `exit ${result.code}`,
    });
    for (const line of result.stdout.toString('utf8').split('\n')) {
      const [name, ok, detail] = line.split('\t');
      if (!name || detail === undefined) continue;
      if (name === 'uid') uid = Number(detail);
      else checks.push({ name, ok: ok === 'ok', detail });
    }
  } catch (error) {
    checks.push({ name: 'connection', ok: false, detail: (error as Error).message });
  } finally {
    conn.close();
  }
  const controls = sshEnforcement(
    config,
    { labels: { any: 'label' } },
    Number.isInteger(uid) ? uid : undefined,
  );
  return { ok: checks.every((c) => c.ok), checks, controls };
}
