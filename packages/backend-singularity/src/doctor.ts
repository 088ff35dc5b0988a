/** What the singularity backend needs here: the CLI, the image, a writable root; what it can enforce. */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { DoctorCheck, DoctorReport, EnforcementReport } from '@agentbox/core';
import { findCli, runCli } from './cli.js';
import type { SingularityResolvedConfig } from './config.js';
import { cgroupLimitsUsable } from './enforcement.js';

export async function doctorSingularity(
  config: SingularityResolvedConfig,
  enforcement: EnforcementReport,
): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const cli = findCli(config.binary, process.env.PATH ?? '');
  if (typeof cli === 'string') checks.push({ name: 'cli', ok: false, detail: cli });
  else {
    const r = await runCli(cli, ['version'], {
      context: { backend: 'singularity', operation: 'doctor' },
    }).catch((error: Error) => ({ code: -1, stdout: Buffer.from(''), stderr: error.message }));
    const version = r.stdout.toString('utf8').trim();
    checks.push(
      r.code === 0
        ? {
            name: 'cli',
            ok: true,
            detail: `${cli.flavour} ${version} at ${cli.path}${version.includes('standin') ? ' (the test stand-in, not Apptainer)' : ''}`,
          }
        : { name: 'cli', ok: false, detail: `${cli.path} version failed: ${r.stderr.trim()}` },
    );
  }
  const uid = process.getuid?.() ?? -1;
  checks.push({
    name: 'features',
    ok: true,
    detail: [
      'instances with --containall and --no-home',
      config.writable === 'overlay' ? 'a persistent --overlay directory per sandbox' : '--writable-tmpfs',
      '--net --network none when the policy blocks the network',
      cgroupLimitsUsable(uid)
        ? '--memory/--cpus/--pids-limit (cgroups)'
        : 'no cgroup limits here (needs root or cgroup v2)',
    ].join('; '),
  });
  checks.push(
    await stat(config.image).then(
      (st) => ({
        name: 'image',
        ok: true,
        detail: `${config.image} (${st.isDirectory() ? 'sandbox directory' : 'image file'})`,
      }),
      () => ({ name: 'image', ok: false, detail: `${config.image} does not exist` }),
    ),
  );
  checks.push(await checkRoot(resolve(config.root)));
  return { ok: checks.every((c) => c.ok), checks, controls: enforcement };
}

/** The root, or the nearest directory above it that exists (the root is created on first open). */
async function checkRoot(root: string): Promise<DoctorCheck> {
  for (let dir = root; ; dir = dirname(dir)) {
    const st = await stat(dir).catch(() => undefined);
    if (st) {
      const ok =
        st.isDirectory() &&
        (await access(dir, constants.W_OK | constants.X_OK).then(
          () => true,
          () => false,
        ));
      return { name: 'root directory', ok, detail: `${ok ? 'writable' : 'not writable'}: ${dir}` };
    }
    if (dirname(dir) === dir)
      return { name: 'root directory', ok: false, detail: `no directory above ${root}` };
  }
}
