/**
 * The library process SIGKILLed in the middle of a checkpoint and of a rollback (issue 18),
 * shared by the backends whose store lives where the sandbox runs (docker, ssh): a child process
 * (crash-child.ts) re-attaches to one sandbox by id and writes, checkpoints and rolls back in a
 * loop; each round kills it just after a chosen step begins, re-attaches by id here and checks
 * that every checkpoint the child finished is listed and verifies, that a checkpoint in flight is
 * whole or absent, that a rollback cut short was finished on re-attach (the tree is one state,
 * never a mix), and that the sandbox works. Assertions are vitest's: call it from a test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SandboxBackend, SandboxSpec } from '@agentbox/core';
import { expect } from 'vitest';

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

export interface CrashTarget {
  /** URL of `@agentbox/core` as the test resolves it (`import.meta.resolve('@agentbox/core')`). */
  core: string;
  /**
   * The calling test file's `import.meta.url`, in `<package>/test/`: the child runs in the package
   * (its tsx and dependencies) and imports `<package>/src/index.ts`, which registers the backend.
   */
  testFile: string;
  /** What the child opens: a re-attach by `id`, kept when the child dies. */
  spec: SandboxSpec;
  /** Re-attach by the same id here, as a new process of the library would. */
  reattach: () => Promise<SandboxBackend>;
  /** Files in each state: every one changes between states, so a checkpoint and a rollback take a while. */
  files: number;
  /** Called after each kill, before the re-attach: what the backend can say about the moment (logged). */
  afterKill?: () => Promise<string>;
}

/** One kill: the step whose start it follows (`c` checkpoint, `b` rollback) and the delay after it. */
export interface CrashRound {
  step: 'c' | 'b';
  delayMs: number;
  /** Then wait (polling, 20 s at most) until this holds, before the delay: a moment seen from outside. */
  until?: () => Promise<boolean>;
}

/** Start the child and SIGKILL it `delayMs` after it prints a line starting with `step`; its lines. */
async function runAndKill(target: CrashTarget, first: number, round: CrashRound): Promise<string[]> {
  const module = fileURLToPath(new URL('../src/index.ts', target.testFile));
  const spec = JSON.stringify({ core: target.core, module, open: target.spec });
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', CHILD, spec, String(first), String(target.files)],
    { cwd: fileURLToPath(new URL('..', target.testFile)), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (chunk) => {
    err += chunk;
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const reached = new Promise<void>((resolve, reject) => {
    const bound = setTimeout(
      () => reject(new Error(`the child never reached "${round.step}": ${out} ${err}`)),
      60_000,
    );
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.split('\n').some((line) => line.startsWith(`${round.step} `))) {
        clearTimeout(bound);
        resolve();
      }
    });
    child.on('exit', () => reject(new Error(`the child exited early: ${err}`)));
  });
  try {
    await reached;
    for (const by = Date.now() + 20_000; round.until && !(await round.until()) && Date.now() < by; )
      await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, round.delayMs));
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

/** Run the rounds; returns the step each kill landed in (the child's last line's tag). */
export async function crashRounds(target: CrashTarget, rounds: readonly CrashRound[]): Promise<string[]> {
  /** The checkpoints the store held after the last round: id → state. */
  let held = new Map<string, string>();
  const landed: string[] = [];
  let next = 0;
  for (const round of rounds) {
    const lines = await runAndKill(target, next, round);
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
    if (target.afterKill) console.log(`killed after "${lines.at(-1)}": ${await target.afterKill()}`);

    const sb = await target.reattach();
    try {
      const { files, states } = await statesIn(sb);
      expect(files).toBe(target.files);
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
    } finally {
      await sb.close();
    }
    next = Math.max(next, ...lines.filter((l) => l.startsWith('w ')).map((l) => Number(l.split(' ')[1]) + 1));
  }
  return landed;
}
