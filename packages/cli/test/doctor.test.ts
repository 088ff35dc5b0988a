/**
 * `agentbox doctor` (the built CLI) says what isolation this machine can give, and each answer
 * matches what the machine really has, probed here on its own: bubblewrap with user namespaces
 * and the egress relay (local), runsc registered in the daemon (docker). A config that asks for
 * what is missing makes the report NOT ready; one that does not leaves it ready.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, ensureBuiltCli, PACKAGE_DIR } from './built-cli.ts';

beforeAll(ensureBuiltCli, 180_000);

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}
interface Report {
  ok: boolean;
  backends: { backend: string; ok: boolean; checks: Check[] }[];
}

async function doctor(...args: string[]): Promise<{ code: number; report: Report }> {
  const r = await promisify(execFile)(process.execPath, [BIN, 'doctor', '--json', ...args], {
    cwd: PACKAGE_DIR,
  }).then(
    (out) => ({ code: 0, stdout: out.stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  return { code: r.code, report: JSON.parse(r.stdout) as Report };
}
const check = (report: Report, name: string) => report.backends[0]!.checks.find((c) => c.name === name);

/** Whether bwrap can create the namespaces a jail needs, asked directly. */
const bwrap = spawnSync('bwrap', [
  '--unshare-user',
  '--unshare-pid',
  '--unshare-net',
  '--ro-bind',
  '/',
  '/',
  'true',
]);
const bwrapWorks = !bwrap.error && bwrap.status === 0;

describe('agentbox doctor', () => {
  it('local: bubblewrap and the egress relay as this machine has them; required only by isolation bwrap', async () => {
    // Side by side: each run is a CLI start, and the egress check opens a sandbox.
    const [plain, jailed, missing] = await Promise.all([
      doctor('--backend', 'local'),
      doctor('--backend', 'local', '--config', '{"isolation":"bwrap"}'),
      doctor('--backend', 'local', '--config', '{"isolation":"bwrap","bwrap":"agentbox-no-such-bwrap"}'),
    ]);
    expect(check(plain.report, 'bubblewrap')).toMatchObject({ ok: true });
    expect(check(plain.report, 'bubblewrap')?.detail).toMatch(bwrapWorks ? /^available: / : /^not available/);
    expect(check(plain.report, 'egress relay')?.detail).toMatch(
      bwrapWorks ? /^available: a jailed sandbox with an allowlist opened in \d+ ms/ : /^not available/,
    );
    expect(plain.code).toBe(0);

    expect(check(jailed.report, 'bubblewrap')?.ok).toBe(bwrapWorks);
    expect(check(jailed.report, 'egress relay')?.ok).toBe(bwrapWorks);
    expect(jailed.code).toBe(bwrapWorks ? 0 : 1);

    expect(check(missing.report, 'bubblewrap')).toMatchObject({ ok: false });
    expect(check(missing.report, 'bubblewrap')?.detail).toMatch(/not installed/);
    expect(check(missing.report, 'egress relay')).toMatchObject({ ok: false });
    expect(missing.code).toBe(1);
  }, 60_000);

  const runtimes = spawnSync('docker', ['info', '--format', '{{json .Runtimes}}'], { encoding: 'utf8' });
  const dockerUp = !runtimes.error && runtimes.status === 0;
  it.skipIf(!dockerUp)(
    `docker: runsc reported as the daemon has it${dockerUp ? '' : ' (skipped: no docker CLI or daemon here)'}`,
    async () => {
      const registered = 'runsc' in (JSON.parse(runtimes.stdout) as Record<string, unknown>);
      const [r, asked] = await Promise.all([
        doctor('--backend', 'docker'),
        doctor('--backend', 'docker', '--config', '{"runtime":"runsc"}'),
      ]);
      const runsc = check(r.report, 'runtime runsc');
      expect(runsc?.ok).toBe(true);
      expect(runsc?.detail).toMatch(registered ? /^registered: / : /^the daemon has no runtime runsc/);
      expect(check(asked.report, 'runtime runsc')?.ok).toBe(registered);
    },
    60_000,
  );
});
