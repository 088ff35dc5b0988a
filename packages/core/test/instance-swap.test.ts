/**
 * BaseSandbox's swapInstance, through the twin backend (test/fixtures/backend-twin), whose
 * rollback copies the snapshot to a new instance directory and swaps the handle onto it, as a
 * provider that restores by starting a new sandbox would.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSandbox, SandboxClosedError, SandboxUnavailableError } from '../src/index.js';
import type { TwinSandbox } from './fixtures/backend-twin/index.ts';
import './fixtures/backend-twin/index.ts';

const roots: string[] = [];
afterAll(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

async function openTwin(): Promise<TwinSandbox> {
  const root = await mkdtemp(join(tmpdir(), 'agentbox-twin-'));
  roots.push(root);
  return (await openSandbox({ backend: 'twin', config: { root } })) as TwinSandbox;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean, ms = 10_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50)))
    if (check()) return true;
  return check();
}

describe('swapInstance (rollback onto a new instance)', () => {
  it('keeps the id, ends the old instance commands with a typed error, moves the sessions, and sends later calls to the new instance', async () => {
    await using sb = await openTwin();
    const id = sb.id;
    const first = sb.instanceDir;
    await sb.writeFile('notes.txt', 'one\n');
    const cp = await sb.checkpoint({ label: 'one' });
    await sb.writeFile('notes.txt', 'two\n');
    await sb.writeFile('later.txt', 'made after the checkpoint\n');

    const oldPool = sb.sessions;
    expect((await sb.exec('pwd -P')).stdout).toBe(`${first}\n`);
    expect(oldPool.lastPath).toBe('session');

    // A command still running on the old instance when the rollback happens.
    const running = sb.spawn('echo $$; exec sleep 30');
    const reader = running.stdout[Symbol.asyncIterator]();
    const pid = Number(new TextDecoder().decode((await reader.next()).value));
    expect(alive(pid)).toBe(true);
    const waited = running.wait().catch((e: unknown) => e);

    await sb.rollback(cp);

    expect(sb.id).toBe(id);
    const error = await waited;
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect((error as Error).message).toMatch(/rolled back while this command ran/);
    expect(await until(() => !alive(pid))).toBe(true);

    // The sessions moved: the old pool is closed, the new one serves the new instance.
    expect(sb.sessions).not.toBe(oldPool);
    await expect(oldPool.startProcess({ argv: ['true'], cwd: '/', env: {} })).rejects.toBeInstanceOf(
      SandboxClosedError,
    );
    const second = sb.instanceDir;
    expect(second).not.toBe(first);
    expect(existsSync(first)).toBe(false);
    expect((await sb.exec('pwd -P')).stdout).toBe(`${second}\n`);
    expect(sb.sessions.lastPath).toBe('session');

    // Files and checkpoints are the new instance's, restored from the snapshot.
    expect(await sb.readTextFile('notes.txt')).toBe('one\n');
    expect((await sb.exec(['cat', 'notes.txt'])).stdout).toBe('one\n');
    await expect(sb.readTextFile('later.txt')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await sb.listCheckpoints()).map((c) => c.id)).toEqual([cp.id]);

    // Rolling back again swaps again.
    await sb.writeFile('notes.txt', 'three\n');
    await sb.rollback(cp.id);
    expect(sb.instanceDir).not.toBe(second);
    expect((await sb.exec('cat notes.txt; pwd -P')).stdout).toBe(`one\n${sb.instanceDir}\n`);
  });

  it('a command whose start is still in flight when the instance is replaced fails the same way', async () => {
    await using sb = await openTwin();
    const cp = await sb.checkpoint();
    // Start and roll back in the same tick: the command was addressed to the old instance.
    const late = sb.exec(['sleep', '30']).catch((e: unknown) => e);
    await sb.rollback(cp);
    expect(await late).toBeInstanceOf(SandboxUnavailableError);
    expect((await sb.exec(['echo', 'fine'])).stdout).toBe('fine\n');
  });
});
