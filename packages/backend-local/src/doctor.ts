/** What the local backend needs here: a POSIX `sh` and a root directory this user can write. */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { DoctorCheck, DoctorReport, EnforcementReport } from '@agentbox/core';

export async function doctorLocal(
  config: { root: string },
  enforcement: EnforcementReport,
): Promise<DoctorReport> {
  const checks = await Promise.all([checkShell(), checkRoot(resolve(config.root))]);
  return { ok: checks.every((c) => c.ok), checks, controls: enforcement };
}

function checkShell(): Promise<DoctorCheck> {
  return new Promise((done) => {
    execFile('sh', ['-c', 'echo ok'], { timeout: 10_000 }, (error, stdout) => {
      done(
        error || stdout.trim() !== 'ok'
          ? { name: 'sh', ok: false, detail: `cannot run sh -c: ${error?.message ?? stdout}` }
          : { name: 'sh', ok: true, detail: 'sh -c runs commands (string commands need it)' },
      );
    });
  });
}

/** The root, or the nearest directory above it that exists (the root is created on first open). */
async function checkRoot(root: string): Promise<DoctorCheck> {
  for (let dir = root; ; dir = dirname(dir)) {
    const st = await stat(dir).catch(() => undefined);
    if (st) {
      const where = dir === root ? root : `${dir} (${root} is created there on first open)`;
      if (!st.isDirectory())
        return { name: 'root directory', ok: false, detail: `${dir} is not a directory` };
      const writable = await access(dir, constants.W_OK | constants.X_OK).then(
        () => true,
        () => false,
      );
      return writable
        ? { name: 'root directory', ok: true, detail: `writable: ${where}` }
        : { name: 'root directory', ok: false, detail: `not writable by this user: ${where}` };
    }
    if (dirname(dir) === dir)
      return { name: 'root directory', ok: false, detail: `no directory above ${root}` };
  }
}
