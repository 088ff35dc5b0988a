/**
 * What the local backend needs here: a POSIX `sh` and a root directory this user can write;
 * and what isolation 'bwrap' needs: bubblewrap with unprivileged user namespaces, and the
 * egress relay of a network allowlist (checked by opening one such sandbox). Those two only
 * fail the report when the config asks for isolation 'bwrap'.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type DoctorCheck, type DoctorReport, type EnforcementReport, openSandbox } from '@agentbox/core';
import { findJailTools } from './jail.js';

export async function doctorLocal(
  config: { root: string; isolation: 'none' | 'bwrap'; bwrap: string },
  enforcement: EnforcementReport,
): Promise<DoctorReport> {
  const needed = config.isolation === 'bwrap';
  const [shell, root, bwrap] = await Promise.all([
    checkShell(),
    checkRoot(resolve(config.root)),
    checkBubblewrap(config.bwrap, needed),
  ]);
  const egress = bwrap.detail.startsWith('available')
    ? await checkEgressRelay(config.bwrap, needed)
    : { name: 'egress relay', ok: !needed, detail: 'not available: needs bubblewrap (above)' };
  const checks = [shell, root, bwrap, egress];
  return { ok: checks.every((c) => c.ok), checks, controls: enforcement };
}

const notNeeded = (needed: boolean) => (needed ? '' : " (only isolation 'bwrap' needs it)");

/** bubblewrap installed, and allowed to create a user and a PID namespace. */
async function checkBubblewrap(program: string, needed: boolean): Promise<DoctorCheck> {
  const name = 'bubblewrap';
  const tools = findJailTools(program, process.env.PATH ?? '');
  if (typeof tools === 'string')
    return { name, ok: !needed, detail: `not available${notNeeded(needed)}: ${tools}` };
  return new Promise((done) => {
    execFile(
      tools.bwrap,
      ['--unshare-user', '--unshare-pid', '--unshare-net', '--ro-bind', '/', '/', 'true'],
      { timeout: 10_000 },
      (error, _stdout, stderr) =>
        done(
          error
            ? {
                name,
                ok: !needed,
                detail: `not available${notNeeded(needed)}: ${tools.bwrap} cannot create namespaces (${stderr.trim() || error.message}); are unprivileged user namespaces allowed (kernel.unprivileged_userns_clone, AppArmor)?`,
              }
            : {
                name,
                ok: true,
                detail: `available: ${tools.bwrap} creates user, PID and network namespaces`,
              },
        ),
    );
  });
}

/** Open (and close) one jailed sandbox with an allowlist: the forwarder and relay start. */
async function checkEgressRelay(program: string, needed: boolean): Promise<DoctorCheck> {
  const name = 'egress relay';
  const root = await mkdtemp(join(tmpdir(), 'agentbox-doctor-'));
  const started = performance.now();
  try {
    const sandbox = await openSandbox({
      backend: 'local',
      config: { root, isolation: 'bwrap', bwrap: program, egressLog: join(root, 'denied.log') },
      policy: { network: { mode: 'allowlist', allow: ['localhost:9'] } },
    });
    await sandbox.close();
    return {
      name,
      ok: true,
      detail: `available: a jailed sandbox with an allowlist opened in ${Math.round(performance.now() - started)} ms (network allowlist and secrets)`,
    };
  } catch (error) {
    return { name, ok: !needed, detail: `not available${notNeeded(needed)}: ${(error as Error).message}` };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
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
