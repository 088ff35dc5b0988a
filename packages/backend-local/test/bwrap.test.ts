/**
 * The local backend's isolated mode (isolation 'bwrap'): what the jail hides (the library's
 * environment, host files, other sandboxes, the checkpoint store, the network), what close()
 * ends (processes that left their group), and that a bwrap request never falls back.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSandbox, type SandboxBackend } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/index.js';
import { cgroupLayout } from '../src/jail-cgroup.js';
import { bwrapMissing } from './bwrap-available.js';

let root: string;
let outside: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'agentbox-local-bwrap-'));
  outside = await mkdtemp(join(tmpdir(), 'agentbox-local-bwrap-host-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const open = (extra: { isolation?: 'none' | 'bwrap'; bwrap?: string } = {}, policy = {}) =>
  openSandbox({ backend: 'local', config: { root, isolation: 'bwrap', ...extra }, policy });

/** Host processes running exactly `sleep <mark>` (the mark is unique to the test). */
function hostSleepers(mark: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return ps.split('\n').filter((line) => new RegExp(`^\\s*\\d+\\s+(\\S*/)?sleep ${mark}\\s*$`).test(line));
}

async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

const READ_ENVIRONS =
  'for f in /proc/$PPID/environ /proc/1/environ /proc/[0-9]*/environ; do tr "\\0" "\\n" <"$f"; done 2>/dev/null; env';

describe.skipIf(bwrapMissing !== undefined)(
  `local backend, isolation 'bwrap'${bwrapMissing ? ` (skipped: ${bwrapMissing})` : ''}`,
  () => {
    it('reports each control it enforces', async () => {
      await using sb = await open();
      expect(sb.capabilities.isolation).toBe('container');
      for (const control of [
        'isolation',
        'readOnlyRoot',
        'network',
        'dropCapabilities',
        'noNewPrivileges',
      ] as const)
        expect(sb.enforcement[control].status, control).toBe('enforced');
      // Limits come from a cgroup of the sandbox's own where one can be made (abuse.test.ts), and only when asked for.
      expect(sb.enforcement['limits.memoryMiB'].status).toBe(
        typeof cgroupLayout() === 'string' ? 'not-supported' : 'not-requested',
      );
    });

    it("keeps the library's environment out of reach (finding 5), which isolation 'none' does not", async () => {
      // /proc/<pid>/environ shows a process's environment as it was started: this process's own.
      await using jailed = await open();
      const seen = await jailed.exec(READ_ENVIRONS);
      expect(seen.stdout).toContain('PATH=');
      const sandboxNames = new Set(seen.stdout.split('\n').map((line) => line.split('=')[0]));
      const hostEntries = readFileSync('/proc/self/environ', 'utf8')
        .split('\0')
        .filter((entry) => entry.includes('=') && !sandboxNames.has(entry.split('=')[0]));
      expect(hostEntries.length).toBeGreaterThan(0);
      for (const entry of hostEntries) expect(seen.stdout, entry).not.toContain(entry);
      // Control: without isolation the same command reads them from the library's process.
      await using bare = await open({ isolation: 'none' });
      const leaked = (await bare.exec(READ_ENVIRONS)).stdout;
      expect(hostEntries.some((entry) => leaked.includes(entry))).toBe(true);
      expect(bare.enforcement.isolation.detail).toMatch(/environment/);
    });

    it('shows no host file outside the system directories, neither to commands nor through a symlink to readFile', async () => {
      const hostFile = join(outside, 'host-secret.txt');
      await writeFile(hostFile, 'HOST-SECRET');
      await using sb = await open();
      const r = await sb.exec(['cat', hostFile]);
      expect(r.exitCode).not.toBe(0);
      expect(r.stdout).not.toContain('HOST-SECRET');
      await symlink(hostFile, join(sb.workdir, 'link'));
      await expect(sb.readFile('link')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      // Control: the same path through the host resolves.
      await using bare = await open({ isolation: 'none' });
      expect((await bare.exec(['cat', hostFile])).stdout).toBe('HOST-SECRET');
    });

    it('hides other sandboxes and the checkpoint store; the root is read-only, /tmp private', async () => {
      await using a = await open();
      await using b = await open();
      await b.writeFile('secret.txt', 'B-SECRET');
      await b.checkpoint();
      const bDir = join(root, b.id);
      const r = await a.exec(
        `cat ${bDir}/workspace/secret.txt ../../${b.id}/workspace/secret.txt; ls -a ${root} ..; ls ${bDir}/checkpoints`,
      );
      expect(r.stdout).not.toContain('B-SECRET');
      expect(r.stdout).not.toContain(b.id);
      expect(r.stdout).not.toContain('checkpoints');
      expect((await a.exec('touch /etc/agentbox-x || touch /usr/agentbox-x')).exitCode).not.toBe(0);
      await a.exec('echo mine >/tmp/t');
      expect((await b.exec('cat /tmp/t')).exitCode).not.toBe(0);
      expect((await a.exec('cat /tmp/t')).stdout).toBe('mine\n');
    });

    it('has no network unless the policy opens it', async () => {
      await using sb = await open();
      expect((await sb.exec('cat /proc/net/dev')).stdout).not.toMatch(/eth|ens|docker|veth/);
      await using opened = await open({}, { network: { mode: 'open' } });
      expect(opened.enforcement.network.status).toBe('not-requested');
    });

    it('close() ends a process that left its group with setsid (finding 3)', async () => {
      const mark = `621.${Date.now() % 100000}${randomBytes(2).readUInt16BE()}`;
      const sb = await open();
      try {
        await sb.exec(`(setsid sh -c 'exec sleep ${mark}' </dev/null >/dev/null 2>&1 &)`);
        // Control: the escape runs (seen from the host).
        expect(await eventually(() => hostSleepers(mark).length === 1, 5_000)).toBe(true);
      } finally {
        await sb.close();
      }
      expect(await eventually(() => hostSleepers(mark).length === 0, 5_000)).toBe(true);
    });

    it('a checkpoint runs with every process of the jail stopped, forked children included, and continues them after', async () => {
      await using sb = await open();
      expect(sb.enforcement.checkpointIntegrity.status).toBe('enforced');
      const jail = (sb as unknown as { jail: { pid: number; frozen<T>(fn: () => Promise<T>): Promise<T> } })
        .jail;
      const count = join(sb.workdir, 'count');
      // Forks all the time (a sleep per round) and counts rounds into the workspace.
      await sb.exec(
        `(setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > count; sleep 0.01; done' </dev/null >/dev/null 2>&1 &)`,
      );
      const read = () => {
        try {
          return readFileSync(count, 'utf8').trim();
        } catch {
          return '';
        }
      };
      expect(await eventually(() => Number(read() || 0) > 3, 5_000)).toBe(true);
      const ns = execFileSync('readlink', [`/proc/${jail.pid}/ns/pid`], { encoding: 'utf8' }).trim();
      const states = () =>
        execFileSync(
          'sh',
          [
            '-c',
            'for p in /proc/[0-9]*; do [ "$(readlink $p/ns/pid 2>/dev/null)" = "$1" ] && [ "${p#/proc/}" != "$2" ] && cut -d")" -f2 $p/stat 2>/dev/null | cut -c2; done; true',
            'sh',
            ns,
            String(jail.pid),
          ],
          { encoding: 'utf8' },
        )
          .split('\n')
          .filter(Boolean);
      await jail.frozen(async () => {
        const before = read();
        await new Promise((r) => setTimeout(r, 300));
        expect(read()).toBe(before);
        const seen = states();
        expect(seen.length, seen.join(',')).toBeGreaterThan(1);
        // Stopped, or dead: a sleep that ended after its parent was stopped stays a zombie until
        // the parent runs again, and a zombie runs nothing.
        expect(
          seen.every((state) => state === 'T' || state === 'Z'),
          seen.join(','),
        ).toBe(true);
        expect(seen.filter((state) => state === 'T').length, seen.join(',')).toBeGreaterThan(0);
      });
      const after = read();
      expect(await eventually(() => read() !== after, 5_000)).toBe(true);
      // The store's own freeze: a checkpoint and a rollback still work while it runs.
      const ckpt = await sb.checkpoint();
      await sb.rollback(ckpt);
    });

    it('never falls back: a missing bwrap fails the open, and a strict isolation request needs it', async () => {
      await expect(open({ bwrap: '/nonexistent/bwrap' })).rejects.toMatchObject({
        code: 'SANDBOX_UNAVAILABLE',
      });
      await expect(
        openSandbox({ backend: 'local', config: { root, isolation: 'none' }, policy: { isolation: true } }),
      ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
    });

    it('exec latency of `true`: bwrap beside the non-isolated backend (printed)', async () => {
      const time = async (sb: SandboxBackend) => {
        await sb.exec('true');
        const t0 = performance.now();
        for (let i = 0; i < 20; i++) expect((await sb.exec('true')).exitCode).toBe(0);
        return (performance.now() - t0) / 20;
      };
      await using bare = await open({ isolation: 'none' });
      await using jailed = await open();
      const none = await time(bare);
      const bwrap = await time(jailed);
      console.log(`exec('true'): isolation none ${none.toFixed(1)} ms, bwrap ${bwrap.toFixed(1)} ms`);
    });
  },
);
