/**
 * Crash safety of the checkpoint store, through the public API of the local backend: a child
 * process checkpoints, rolls back and deletes in a loop and is SIGKILLed at many points (a sweep
 * of delays); after each kill this process re-attaches by id and checks that every checkpoint the
 * child finished is listed, verifies, and rolls back to exactly its tree; that a checkpoint in
 * flight is either whole or absent; and that a rollback cut short was finished on re-attach
 * (the tree is the rollback's target or, if no change had begun, the tree before it: never a mix).
 * Then a store damaged on disk: verifyCheckpoints names each damaged object and manifest, and a
 * rollback to a broken checkpoint is refused and changes nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSandbox, type SandboxBackend } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/index.js';
import { snapshot, stateOf, writeState } from './fixtures/crash-tree.mjs';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.mjs', import.meta.url));
const PACKAGES = fileURLToPath(new URL('../..', import.meta.url));
/** Kill points: delays after the child is ready, spread over a few of its checkpoint cycles. */
const KILLS = 16;

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'agentbox-crash-test-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** The child runs the built packages: refuse to test a build older than the sources. */
function assertBuilt(): void {
  for (const pkg of ['core', 'backend-local']) {
    const dist = join(PACKAGES, pkg, 'dist', 'index.js');
    if (!existsSync(dist)) throw new Error(`${dist} is missing: run \`pnpm -r build\` first`);
    const built = statSync(dist).mtimeMs;
    const sources = join(PACKAGES, pkg, 'src');
    for (const entry of readdirSync(sources, { recursive: true, encoding: 'utf8' }))
      if (statSync(join(sources, entry)).mtimeMs > built)
        throw new Error(`${pkg}/dist is older than ${pkg}/src/${entry}: run \`pnpm -r build\` first`);
  }
}

/** Start the child and SIGKILL it `delayMs` after it says it is ready; its lines as it printed them. */
async function runAndKill(id: string, first: number, delayMs: number): Promise<string[]> {
  const child: ChildProcess = spawn(process.execPath, [CHILD, root, id, String(first)], {
    cwd: PACKAGES,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (chunk) => {
    err += chunk;
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    const bound = setTimeout(() => reject(new Error(`the child never got ready: ${err}`)), 30_000);
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('\n')) {
        clearTimeout(bound);
        resolve();
      }
    });
    child.on('exit', () => reject(new Error(`the child exited early: ${err}`)));
  });
  try {
    await ready;
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  child.kill('SIGKILL');
  await exited;
  if (err) throw new Error(`the child wrote to stderr: ${err}`);
  return out.split('\n').filter(Boolean);
}

/** What the child's lines say the store must hold, and which tree the sandbox must show. */
function expectations(before: ReadonlyMap<string, number>, lines: string[]) {
  const finished = new Map(before); // id → state
  const deleting = new Set<string>();
  let inFlight: number | undefined;
  let tree: number | undefined;
  let rollback: { to: number; from: number } | undefined;
  for (const line of lines) {
    const [tag, a, b] = line.split(' ');
    if (tag === 'w') tree = undefined; // the agent is mid-write: its own mix, not the store's
    if (tag === 'c') {
      inFlight = Number(a);
      tree = Number(a);
    }
    if (tag === 'C') {
      finished.set(b!, Number(a));
      inFlight = undefined;
    }
    if (tag === 'b') rollback = { to: Number(a), from: tree! };
    if (tag === 'R') {
      tree = Number(a);
      rollback = undefined;
    }
    if (tag === 'd') deleting.add(a!);
    if (tag === 'D') {
      finished.delete(a!);
      deleting.delete(a!);
    }
  }
  return { finished, deleting, inFlight, tree, rollback, phase: lines.at(-1)?.split(' ')[0] ?? 'ready' };
}

async function expectTree(sb: SandboxBackend, state: number): Promise<void> {
  expect(Object.fromEntries(snapshot(sb.workdir))).toEqual(Object.fromEntries(stateOf(state)));
}

describe('checkpoint store under SIGKILL (local backend)', () => {
  it(`survives a kill at ${KILLS} points of checkpoint, rollback and delete; every earlier checkpoint verifies and restores`, async () => {
    assertBuilt();
    const id = 'crash-sweep';
    const phases: Record<string, number> = {};
    let checkedCheckpoints = 0;
    const started = Date.now();
    let next = 0;
    /** The checkpoints the store held after the last round's checks: id → state. */
    let held = new Map<string, number>();
    for (let round = 0; round < KILLS; round++) {
      // Delays from 0 to ~600 ms, in an order that does not line up with the child's cycle.
      const delayMs = (round * 197) % 601;
      const lines = await runAndKill(id, next, delayMs);
      const want = expectations(held, lines);
      phases[want.phase] = (phases[want.phase] ?? 0) + 1;

      await using sb = await openSandbox({ backend: 'local', id, config: { root, keep: true } });
      // Re-attached: a rollback cut short has been finished, or had not begun to change anything.
      if (want.rollback) {
        const now = Object.fromEntries(snapshot(sb.workdir));
        const options = [want.rollback.to, want.rollback.from].map((k) => Object.fromEntries(stateOf(k)));
        expect(
          options,
          `after a kill in a rollback from ${want.rollback.from} to ${want.rollback.to}`,
        ).toContainEqual(now);
      } else if (want.tree !== undefined) await expectTree(sb, want.tree);
      expect((await sb.exec('true')).exitCode).toBe(0);

      const report = await sb.verifyCheckpoints();
      expect(report).toMatchObject({
        ok: true,
        damagedObjects: [],
        damagedManifests: [],
        interruptedRollback: undefined,
      });
      const listed = await sb.listCheckpoints();
      const ids = listed.map((c) => c.id);
      for (const done of want.finished.keys())
        if (!want.deleting.has(done)) expect(ids, `after ${lines.join(' | ')}`).toContain(done);
      for (const info of listed) {
        const state = Number(info.label);
        const known = want.finished.has(info.id) || want.deleting.has(info.id) || state === want.inFlight;
        expect(known, `${info.id} (${info.label}) is neither finished, being deleted nor in flight`).toBe(
          true,
        );
        expect(report.intact).toContain(info.id);
        // verifyCheckpoints re-hashed them all; restore those new since the last round, and all at the end.
        if (held.has(info.id) && round < KILLS - 1) continue;
        await sb.rollback(info.id);
        await expectTree(sb, state);
        checkedCheckpoints++;
      }
      held = new Map(listed.map((c) => [c.id, Number(c.label)]));
      // The next child goes on from the state after the last one this child began.
      next = Math.max(
        next,
        ...lines.filter((l) => l.startsWith('w ')).map((l) => Number(l.split(' ')[1]) + 1),
      );
      writeState(sb.workdir, next - 1);
    }
    console.log(
      `crash sweep: ${KILLS} kills, last step at the kill ${JSON.stringify(phases)}, ${checkedCheckpoints} checkpoint restores checked, ${Date.now() - started} ms`,
    );
    // The sweep must have cut into the store's own work, not only into the agent's writes.
    expect(KILLS - (phases.w ?? 0) - (phases.ready ?? 0)).toBeGreaterThan(0);
  }, 120_000);
});

describe('a damaged checkpoint store (local backend)', () => {
  const id = 'damaged';
  const store = () => join(root, id, 'checkpoints');
  /** The pack holding `content`, and where in it. */
  const objectOf = async (content: string) => {
    const hash = createHash('sha256').update(content).digest('hex');
    const dir = join(store(), 'packs');
    for (const name of (await fs.readdir(dir)).filter((n) => n.endsWith('.idx'))) {
      const { objects } = JSON.parse(await fs.readFile(join(dir, name), 'utf8')) as {
        objects: [string, number, number][];
      };
      const found = objects.find(([h]) => h === hash);
      if (found) return { hash, pack: join(dir, name.replace(/\.idx$/, '.pack')), offset: found[1] };
    }
    throw new Error(`no pack holds ${JSON.stringify(content)}`);
  };
  const reopen = () => openSandbox({ backend: 'local', id, config: { root, keep: true } });

  it('verifyCheckpoints names each damaged object and manifest and what it breaks; rollback to a broken checkpoint is refused and changes nothing', async () => {
    await using sb = await openSandbox({ backend: 'local', id, config: { root, keep: true } });
    await sb.writeFile('shared.txt', 'in every checkpoint');
    await sb.writeFile('a.txt', 'only in A');
    const a = await sb.checkpoint({ label: 'A' });
    await sb.writeFile('a.txt', 'only in B');
    const b = await sb.checkpoint({ label: 'B' });
    await sb.writeFile('a.txt', 'only in C');
    const c = await sb.checkpoint({ label: 'C' });
    await sb.writeFile('a.txt', 'only in D');
    const d = await sb.checkpoint({ label: 'D' });
    expect(await sb.verifyCheckpoints()).toMatchObject({ ok: true, intact: [a.id, b.id, c.id, d.id] });

    // A's object rewritten in place (same length); C's pack (it holds only C's object) removed.
    const rewritten = await objectOf('only in A');
    await fs.chmod(rewritten.pack, 0o600);
    const file = await fs.open(rewritten.pack, 'r+');
    await file.write(Buffer.from('only in X'), 0, 9, rewritten.offset);
    await file.close();
    const missing = await objectOf('only in C');
    await fs.rm(missing.pack);
    await fs.writeFile(join(store(), 'manifests', `${b.id}.json`), '{"info":');

    const report = await sb.verifyCheckpoints();
    expect(report).toMatchObject({
      ok: false,
      intact: [d.id],
      damagedObjects: expect.arrayContaining([
        { object: rewritten.hash, reason: 'mismatch', checkpoints: [a.id] },
        { object: missing.hash, reason: 'missing', checkpoints: [c.id] },
      ]),
      damagedManifests: [{ id: b.id, reason: expect.stringMatching(/corrupt/) }],
      interruptedRollback: undefined,
    });
    expect(report.damagedObjects).toHaveLength(2);
    expect(report.objectsChecked).toBe(4); // shared, A, C, D: B's manifest names nothing readable

    await sb.writeFile('a.txt', 'live');
    const before = Object.fromEntries(snapshot(sb.workdir));
    for (const broken of [a, b, c])
      await expect(sb.rollback(broken.id)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    expect(Object.fromEntries(snapshot(sb.workdir))).toEqual(before);
    expect((await sb.exec('cat a.txt')).stdout).toBe('live'); // a refused rollback leaves nothing to finish

    // The scrub forgets damaged objects: the next checkpoint of that content stores it again, mending A.
    await sb.writeFile('a.txt', 'only in A');
    await sb.checkpoint({ label: 'A again' });
    expect((await sb.verifyCheckpoints()).damagedObjects.map((o) => o.checkpoints)).toEqual([[c.id]]);
    await sb.rollback(a.id);
    expect(await sb.readTextFile('a.txt')).toBe('only in A');
  });

  it('a re-attach finishes a rollback cut short; if it cannot, the sandbox refuses work until a rollback succeeds', async () => {
    const record = join(store(), 'rollback-pending.json');
    const d = await (async () => {
      await using sb = await reopen();
      return (await sb.listCheckpoints()).find((info) => info.label === 'D')!;
    })();
    // A rollback to D that died halfway: a stray file of the other state is still in the tree.
    await fs.writeFile(join(root, id, 'workspace', 'half-restored.txt'), 'from the other state');
    await fs.writeFile(
      record,
      `${JSON.stringify({ rollbackTo: d.id, startedAt: new Date().toISOString() })}\n`,
    );
    {
      await using sb = await reopen();
      expect(await sb.readTextFile('a.txt')).toBe('only in D');
      expect(existsSync(join(sb.workdir, 'half-restored.txt'))).toBe(false);
      expect(existsSync(record)).toBe(false);
    }

    // Cut short on its way to a checkpoint that is gone since: reported, never presented as whole.
    const gone = 'ckpt-00000000-0badc0de';
    await fs.writeFile(
      record,
      `${JSON.stringify({ rollbackTo: gone, startedAt: new Date().toISOString() })}\n`,
    );
    await using sb = await reopen();
    const incomplete = { code: 'ROLLBACK_INCOMPLETE', checkpointId: gone };
    await expect(sb.exec('true')).rejects.toMatchObject(incomplete);
    await expect(sb.readFile('a.txt')).rejects.toMatchObject(incomplete);
    await expect(sb.writeFile('a.txt', 'x')).rejects.toMatchObject(incomplete);
    await expect(sb.checkpoint()).rejects.toMatchObject(incomplete);
    expect((await sb.verifyCheckpoints()).interruptedRollback).toEqual({ checkpointId: gone });
    await sb.rollback(d.id);
    expect((await sb.exec('cat a.txt')).stdout).toBe('only in D');
    expect(existsSync(record)).toBe(false);
  });
});
