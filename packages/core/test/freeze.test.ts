/**
 * Stopping a sandbox's processes: a parent waiting in vfork for a child that was stopped before
 * its exec never stops itself (dash runs every command through vfork), and still counts as
 * stopped. The fixture (scripts/vfork-stop.c) is a small C program that does exactly that.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildVforkStop } from '../../../scripts/vfork-stop.ts';
import { continueProcesses, processStat, stopProcesses } from '../src/freeze.js';

const dir = mkdtempSync(join(tmpdir(), 'agentbox-freeze-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const compiled = buildVforkStop(dir, 'freeze test');

/** SIGKILL for a process that may have ended since it was listed. */
function killIfAlive(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

describe.skipIf(process.platform !== 'linux' || !compiled)('stopProcesses', () => {
  it('counts a parent held in vfork by a stopped child as stopped, and continues both', async () => {
    const parent = spawn(compiled!, [], { stdio: 'ignore' });
    const members = () =>
      readdirSync('/proc')
        .filter((n) => /^\d+$/.test(n))
        .map(Number)
        .filter((pid) => pid === parent.pid || processStat(pid)?.ppid === parent.pid);
    try {
      // The child stops itself between vfork and exec; the parent sleeps uninterruptibly.
      for (let i = 0; i < 100 && members().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      const [, child] = members();
      expect(processStat(child!)?.state).toBe('T');
      expect(processStat(parent.pid!)?.state).toBe('D');
      const started = performance.now();
      const stopped = await stopProcesses(members, {}, 5_000);
      expect(performance.now() - started).toBeLessThan(4_000);
      expect([...stopped].sort()).toEqual(members().sort());
      continueProcesses(stopped);
      // Both go on: the child exits, and the parent, out of vfork, reaps it and waits in pause().
      for (let i = 0; i < 100 && (members().length > 1 || processStat(parent.pid!)?.state !== 'S'); i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(members()).toEqual([parent.pid]);
      expect(processStat(parent.pid!)?.state).toBe('S');
    } finally {
      // The child first: a stopped child of a dead parent would stay behind. One may have ended
      // since it was listed.
      for (const pid of members().reverse()) killIfAlive(pid);
    }
  });
});
