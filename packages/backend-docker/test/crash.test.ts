/**
 * The library process SIGKILLed in the middle of a checkpoint and of a rollback on docker (issue
 * 18), the pattern of backend-local's crash.test.ts: a child process re-attaches to one sandbox
 * by id and writes, checkpoints and rolls back in a loop; the test kills it just after a chosen
 * step begins, re-attaches by id itself and checks that every checkpoint the child finished is
 * listed and verifies, that a checkpoint in flight is whole or absent, that a rollback cut short
 * was finished on re-attach (the tree is one state, never a mix), and that the sandbox works.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openSandbox, type SandboxBackend } from '@agentbox/core';
import { afterAll, describe, expect, it } from 'vitest';
import '../src/index.js';
import { RUN_LABEL, runId, runObjects, TEST_CONFIG } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));
const PACKAGE = fileURLToPath(new URL('..', import.meta.url));
/** Files in each state: every one changes between states, so a checkpoint and a rollback take a while. */
const FILES = 300;
const id = `crash-${runId}`;

const reattach = (keep = true) =>
  openSandbox({
    backend: 'docker',
    id,
    config: { ...TEST_CONFIG, keep },
    policy: { labels: { [RUN_LABEL]: runId } },
  });

afterAll(async () => {
  // The last handle is not kept: container, volumes and store go.
  await (await reattach(false)).close();
  expect((await runObjects()).filter((o) => o.includes(id))).toEqual([]);
});

/** Start the child and SIGKILL it `delayMs` after it prints a line starting with `step`; its lines. */
async function runAndKill(first: number, step: string, delayMs: number): Promise<string[]> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', CHILD, id, runId, String(first), String(FILES)],
    { cwd: PACKAGE, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (chunk) => {
    err += chunk;
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const reached = new Promise<void>((resolve, reject) => {
    const bound = setTimeout(
      () => reject(new Error(`the child never reached "${step}": ${out} ${err}`)),
      60_000,
    );
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.split('\n').some((line) => line.startsWith(`${step} `))) {
        clearTimeout(bound);
        resolve();
      }
    });
    child.on('exit', () => reject(new Error(`the child exited early: ${err}`)));
  });
  try {
    await reached;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  return out.split('\n').filter(Boolean);
}

/** The states present in the tree: one number for a whole state, several for a mix. */
async function statesIn(sb: SandboxBackend): Promise<{ files: number; states: string[] }> {
  const r = await sb.exec(['sh', '-c', 'ls d | wc -l; cat d/* | cut -d" " -f1 | sort -u']);
  expect(r.exitCode, r.stderr).toBe(0);
  const [files, ...states] = r.stdout.trim().split('\n');
  return { files: Number(files), states };
}

describe('the library process SIGKILLed mid-checkpoint and mid-rollback (docker)', () => {
  it('a re-attach by id finds every finished checkpoint verifiable, the one in flight whole or absent, and a cut rollback finished', async () => {
    // One kill inside a checkpoint and one inside a rollback (each child start costs seconds here).
    const rounds = [
      { step: 'c', delayMs: 60 },
      { step: 'b', delayMs: 60 },
    ];
    const started = Date.now();
    /** The checkpoints the store held after the last round: id → state. */
    let held = new Map<string, string>();
    const landed: string[] = [];
    let next = 0;
    for (const { step, delayMs } of rounds) {
      const lines = await runAndKill(next, step, delayMs);
      const finished = new Map(held);
      let inFlight: string | undefined;
      let written: string | undefined;
      let rollback: { to: string; from: string } | undefined;
      for (const line of lines) {
        const [tag, a, b] = line.split(' ');
        if (tag === 'w') written = a;
        if (tag === 'c') inFlight = a;
        if (tag === 'C') {
          finished.set(b!, a!);
          inFlight = undefined;
        }
        if (tag === 'b') rollback = { to: a!, from: written! };
        if (tag === 'R') {
          written = a;
          rollback = undefined;
        }
      }
      const last = lines.at(-1)!.split(' ')[0]!;
      landed.push(last);

      await using sb = await reattach();
      const { files, states } = await statesIn(sb);
      expect(files).toBe(FILES);
      // Killed while it wrote a state: the child's own mix, not the store's; nothing to check there.
      if (last !== 'w') expect(states, `after ${lines.join(' | ')}`).toHaveLength(1);
      // A rollback cut short was finished (or had changed nothing yet): never a mix of the two.
      if (rollback) expect([rollback.to, rollback.from]).toContain(states[0]);
      else if (last === 'c') expect(states[0]).toBe(inFlight);

      const report = await sb.verifyCheckpoints();
      expect(report).toMatchObject({
        ok: true,
        damagedObjects: [],
        damagedManifests: [],
        interruptedRollback: undefined,
      });
      const listed = await sb.listCheckpoints();
      const ids = listed.map((c) => c.id);
      for (const done of finished.keys()) expect(ids, `after ${lines.join(' | ')}`).toContain(done);
      for (const info of listed) {
        expect(finished.has(info.id) || info.label === inFlight, `${info.id} (${info.label})`).toBe(true);
        expect(report.intact).toContain(info.id);
        // A checkpoint new since the last round restores exactly its state.
        if (held.has(info.id)) continue;
        await sb.rollback(info.id);
        expect((await statesIn(sb)).states).toEqual([info.label]);
      }
      held = new Map(listed.map((c) => [c.id, c.label!]));
      next = Math.max(
        next,
        ...lines.filter((l) => l.startsWith('w ')).map((l) => Number(l.split(' ')[1]) + 1),
      );
    }
    console.log(`docker crash: kills after ${JSON.stringify(landed)}, ${Date.now() - started} ms`);
    // The kills must have cut into a checkpoint and into a rollback, not only between steps.
    expect(landed).toContain('c');
    expect(landed).toContain('b');
  }, 120_000);
});
