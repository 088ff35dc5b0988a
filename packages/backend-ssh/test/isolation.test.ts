/**
 * One sandbox per identity on a shared login user (issue 15, findings 2 and 3): with bubblewrap
 * on the host each sandbox's commands run in a jail that shows only its own workspace; close()
 * ends the processes that left their group; without a jail the report says isolation is not
 * enforced and a strict open that asks for it is refused. A checkpoint freezes the jail even
 * when one of its processes can never stop by itself (held in vfork).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentboxError, openSandbox } from '@agentbox/core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildVforkStop } from '../../../scripts/vfork-stop.ts';
import type { SshConfig, SshSandbox } from '../src/index.js';
import { freezeJail, thawJail } from '../src/jail.js';
import '../src/index.js';
import { sshCli, sshConfig } from './sshd.ts';

const rootName = `ssh-isolation-${process.pid}-${Date.now().toString(36)}`;
const root = `~/.agentbox/${rootName}`;
afterAll(() => sshCli(`rm -rf "$HOME/.agentbox/${rootName}"`).catch(() => {}));

const open = async (config: Partial<SshConfig> = {}) =>
  (await openSandbox({ backend: 'ssh', config: sshConfig({ root, ...config }) })) as SshSandbox;

const hostHasBwrap =
  (await sshCli('command -v bwrap nsenter setpriv >/dev/null && echo yes || echo no')).trim() === 'yes';

/** Host pids of processes running exactly `sleep <mark>`, seen by the login user on the host. */
async function hostSleepers(mark: string): Promise<number[]> {
  const out = await sshCli('ps -eo pid=,args=');
  return out
    .split('\n')
    .filter((line) => new RegExp(`^\\s*\\d+\\s+(\\S*/)?sleep ${mark}\\s*$`).test(line))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

const fixtures = mkdtempSync(join(tmpdir(), 'agentbox-ssh-freeze-'));
afterAll(() => rmSync(fixtures, { recursive: true, force: true }));
const vforkStop = buildVforkStop(fixtures, 'ssh vfork freeze test');

const uniqueMark = () => `621.${randomBytes(3).readUIntBE(0, 3)}`;

describe.skipIf(!hostHasBwrap)(
  `ssh: a bubblewrap jail per sandbox${hostHasBwrap ? '' : ' (skipped: the SSH host has no bwrap, nsenter or setpriv)'}`,
  () => {
    it("A cannot read or write B's workspace or checkpoints, by any path (finding 2)", async () => {
      await using a = await open();
      await using b = await open();
      expect(a.jail).toBeDefined();
      expect(a.enforcement.isolation.status).toBe('enforced');
      await b.writeFile('secret.txt', 'B-SECRET');
      await b.checkpoint();
      const attack = [
        `cat ../../${b.id}/workspace/secret.txt ${b.remoteDir}/workspace/secret.txt`,
        `ls -a .. ../.. ${b.remoteDir} ${b.remoteDir}/checkpoints`,
        `echo forged >${b.remoteDir}/workspace/forged.txt`,
        `echo forged >../checkpoints/forged`,
      ].join('; ');
      const r = await a.exec(attack);
      expect(r.stdout).not.toContain('B-SECRET');
      expect(r.stdout).not.toContain(b.id);
      expect(r.stdout).not.toContain('checkpoints');
      expect((await b.exec('ls')).stdout).toBe('secret.txt\n');
      expect(await sshCli(`ls ${a.remoteDir}/checkpoints ${b.remoteDir}/checkpoints`)).not.toContain(
        'forged',
      );
      // The file API resolves paths as the sandbox sees them: a symlink cannot lead it into B.
      await a.exec(['ln', '-s', `${b.remoteDir}/workspace/secret.txt`, 'link']);
      await expect(a.readFile('link')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(a.readFile(`${b.remoteDir}/workspace/secret.txt`)).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    });

    it("the control: without the jail, A reads B's secret, and the report says isolation is not enforced", async () => {
      await using a = await open({ isolation: 'none' });
      await using b = await open({ isolation: 'none' });
      await b.writeFile('secret.txt', 'B-SECRET');
      expect((await a.exec(`cat ../../${b.id}/workspace/secret.txt`)).stdout).toBe('B-SECRET');
      expect(a.enforcement.isolation.status).toBe('not-supported');
      expect(a.enforcement.isolation.detail).toMatch(/read and write the others/);
    });

    it('close() ends a process that left its group with setsid, and the fast path works in the jail (finding 3)', async () => {
      const mark = uniqueMark();
      const sandbox = await open();
      try {
        expect((await sandbox.exec('echo hi')).stdout).toBe('hi\n');
        expect(sandbox.sessions.stats.session).toBeGreaterThan(0);
        await sandbox.exec(`(setsid sh -c 'exec sleep ${mark}' </dev/null >/dev/null 2>&1 &)`);
        // Control: it runs, and the sandbox's own ps sees it.
        expect(await eventually(async () => (await hostSleepers(mark)).length === 1, 5_000)).toBe(true);
        expect((await sandbox.exec('ps -eo args')).stdout).toContain(`sleep ${mark}`);
      } finally {
        await sandbox.close();
      }
      expect(await eventually(async () => (await hostSleepers(mark)).length === 0, 5_000)).toBe(true);
    });

    it("a session's runner and waiting shells are closed to the sandbox's processes through /proc", async () => {
      await using sandbox = await open();
      expect(sandbox.jail?.hidden).toBeDefined();
      // A session command's parent is its waiting shell and that shell's parent the runner: it
      // must not open their fds (which carry later commands' requests and results), though it
      // sees that they exist.
      const probe =
        'for p in $PPID $(cut -d" " -f4 /proc/$PPID/stat); do cat /proc/$p/comm; ls /proc/$p/fd >/dev/null 2>&1 && echo open || echo closed; done';
      const r = await sandbox.exec(['sh', '-c', probe]);
      expect(sandbox.sessions.stats.session).toBeGreaterThan(0);
      expect(r.stdout).toBe('sh\nclosed\nsh\nclosed\n');
      // Its own fds, and those of an ordinary process of the sandbox, stay open to it.
      const own = await sandbox.exec([
        'sh',
        '-c',
        'sleep 5 & ls /proc/$!/fd >/dev/null && echo open; kill $!',
      ]);
      expect(own.stdout).toBe('open\n');
    });

    it.skipIf(!vforkStop)(
      'a checkpoint stops a jail whose process waits in vfork for a child stopped before its exec',
      async () => {
        await using sandbox = await open();
        await sandbox.writeFile('vfork-stop', readFileSync(vforkStop!), { mode: 0o755 });
        await sandbox.exec('./vfork-stop </dev/null >/dev/null 2>&1 &');
        // The states of the fixture's processes, as the sandbox sees them (both keep its name).
        const states = async () =>
          (await sandbox.exec('grep -h "^[0-9]* (vfork-stop) " /proc/[0-9]*/stat | cut -d" " -f3 | sort'))
            .stdout;
        // The parent sleeps uninterruptibly in vfork; its child stopped itself before its exec.
        expect(await eventually(async () => (await states()) === 'D\nT\n', 5_000)).toBe(true);
        const started = performance.now();
        await sandbox.checkpoint();
        expect(performance.now() - started).toBeLessThan(5_000);
        // The thaw continued both: the child exited, the parent reaped it and waits in pause().
        expect(await eventually(async () => (await states()) === 'S\n', 5_000)).toBe(true);
      },
    );

    it("a freeze stops every process of the jail and none of another jail's; the thaw continues them", async () => {
      await using sandbox = await open();
      await using other = await open();
      const [mine, theirs] = [uniqueMark(), uniqueMark()];
      await sandbox.exec(
        `sleep ${mine} </dev/null >/dev/null 2>&1 & sleep ${mine} </dev/null >/dev/null 2>&1 &`,
      );
      await other.exec(`sleep ${theirs} </dev/null >/dev/null 2>&1 &`);
      expect(await eventually(async () => (await hostSleepers(mine)).length === 2, 5_000)).toBe(true);
      expect(await eventually(async () => (await hostSleepers(theirs)).length === 1, 5_000)).toBe(true);
      /** Each process's state letter, as the host's /proc shows it. */
      const states = async (pids: number[]) =>
        (await sshCli(`for p in ${pids.join(' ')}; do cut -d' ' -f3 /proc/$p/stat; done`)).trim().split('\n');
      const [ours, another] = [await hostSleepers(mine), await hostSleepers(theirs)];
      const stopped = await freezeJail(sandbox.connection, sandbox.jail!, {});
      try {
        expect(await states(ours)).toEqual(['T', 'T']);
        expect(await states(another)).toEqual(['S']);
        for (const pid of ours) expect(stopped).toContain(pid);
      } finally {
        await thawJail(sandbox.connection, sandbox.jail!, stopped, {});
      }
      expect(await states(ours)).toEqual(['S', 'S']);
    });

    it("a sandbox's /proc shows only its own processes, and none of the host's environment", async () => {
      await using a = await open();
      await using b = await open();
      const mark = uniqueMark();
      const pending = b.exec(`sleep ${mark}`, { timeoutMs: 20_000 }).catch(() => {});
      try {
        expect(await eventually(async () => (await hostSleepers(mark)).length === 1, 5_000)).toBe(true);
        const ps = (await a.exec('ps -eo args')).stdout;
        expect(ps).not.toContain(`sleep ${mark}`);
        const environ = (await a.exec('cat /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n"')).stdout;
        expect(environ).not.toMatch(/^SSH_(CLIENT|CONNECTION)=/m);
      } finally {
        await b.close();
        await pending;
      }
    });
  },
);

/**
 * A timeout (issue 15, finding 3) ends a process that left the command's group with setsid but
 * kept its output, on both paths, in a jail and without one, while the sandbox stays open.
 */
describe('ssh: a timeout reaches a setsid process that holds the output', () => {
  const modes = [
    ...(hostHasBwrap ? [{ isolation: 'bwrap' as const }] : []),
    { isolation: 'none' as const },
  ].flatMap((m) => [
    { ...m, fastPath: true },
    { ...m, fastPath: false },
  ]);
  it.each(modes)('isolation $isolation, fastPath $fastPath', async ({ isolation, fastPath }) => {
    await using sandbox = await open({ isolation, fastPath });
    const mark = uniqueMark();
    try {
      const code = await sandbox
        .exec(`setsid sh -c 'exec sleep ${mark}' & sleep 30`, { timeoutMs: 2_000 })
        .then(
          () => 'no timeout',
          (e: { code?: string }) => e.code,
        );
      expect(code).toBe('TIMEOUT');
      expect(sandbox.sessions.lastPath).toBe(fastPath ? 'session' : 'plain');
      expect(await eventually(async () => (await hostSleepers(mark)).length === 0, 5_000)).toBe(true);
      // The sandbox stays usable.
      expect((await sandbox.exec('echo after')).stdout).toBe('after\n');
    } finally {
      for (const pid of await hostSleepers(mark)) await sshCli(`kill -9 ${pid}`).catch(() => {});
    }
  });
});

describe('ssh: isolation that cannot be enforced is refused, never reported', () => {
  it("a strict open that asks for isolation with isolation 'none' is refused", async () => {
    const error = await openSandbox({
      backend: 'ssh',
      config: sshConfig({ root, isolation: 'none' }),
      policy: { isolation: true },
    }).then(
      async (sb) => {
        await sb.close();
        throw new Error('expected a refusal');
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AgentboxError);
    expect(error).toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
  });
});
