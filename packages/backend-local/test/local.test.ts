import { chown, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSandbox, type SandboxBackend } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalConfigSchema, local } from '../src/index.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'agentbox-local-test-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('local backend', () => {
  it('does not leak the host environment into commands', async () => {
    process.env.AGENTBOX_TEST_API_KEY = 'secret-value';
    await using sb = await openSandbox({ backend: 'local', config: { root } });
    const r = await sb.exec('env');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toContain('secret-value');
    expect(r.stdout).toContain('PAGER=cat');
    delete process.env.AGENTBOX_TEST_API_KEY;
  });

  it('spawn: a stream read from the start gets all of it; one left unread until wait() is not kept, and says so', async () => {
    await using sb = await openSandbox({ backend: 'local', config: { root } });
    const read = sb.spawn('seq 1 20000');
    let text = '';
    for await (const chunk of read.stdout) text += Buffer.from(chunk).toString();
    expect(text.split('\n').length).toBe(20001);
    expect((await read.wait()).exitCode).toBe(0);

    const unread = sb.spawn('seq 1 20000');
    expect((await unread.wait()).stdout.length).toBe(text.length);
    const iterate = async () => {
      for await (const _ of unread.stdout) return;
    };
    await expect(iterate()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: /not buffered/ });
  });

  it('reports that it isolates nothing', async () => {
    await using sb = await openSandbox({ backend: 'local', config: { root } });
    expect(sb.capabilities.isolation).toBe('none');
    expect(sb.enforcement.isolation.status).toBe('not-supported');
    expect(sb.enforcement.readOnlyRoot.status).toBe('not-supported');
    expect(sb.enforcement.network.status).toBe('not-supported');
  });

  it('refuses a strict policy that asks for isolation, and creates nothing', async () => {
    await expect(
      openSandbox({
        backend: 'local',
        id: 'refused',
        config: { root },
        policy: { readOnlyRoot: true, network: { mode: 'none' } },
      }),
    ).rejects.toMatchObject({
      code: 'POLICY_NOT_ENFORCEABLE',
      controls: { readOnlyRoot: expect.any(String), network: expect.any(String) },
    });
    const { existsSync } = await import('node:fs');
    expect(existsSync(join(root, 'refused'))).toBe(false);
  });

  it('opens with strict: false and reports what is not enforced', async () => {
    await using sb = await openSandbox({
      backend: 'local',
      config: { root },
      policy: { readOnlyRoot: true },
      strict: false,
    });
    expect(sb.enforcement.readOnlyRoot.status).toBe('not-supported');
  });

  it('re-attaches to a kept sandbox by id, with its files and checkpoints', async () => {
    const first = await openSandbox({ backend: 'local', id: 'keepme', config: { root, keep: true } });
    await first.writeFile('notes.txt', 'remember this');
    const ckpt = await first.checkpoint({ label: 'before' });
    await first.close();
    const again = await openSandbox({ backend: 'local', id: 'keepme', config: { root } });
    expect(await again.readTextFile('notes.txt')).toBe('remember this');
    expect((await again.listCheckpoints()).map((c) => c.id)).toEqual([ckpt.id]);
    await again.close();
  });

  it('stores only what changed since the previous checkpoint', async () => {
    await using sb: SandboxBackend = await openSandbox({ backend: 'local', config: { root } });
    await sb.exec(
      'mkdir d && i=0; while [ $i -lt 200 ]; do head -c 4096 /dev/urandom > d/f$i; i=$((i+1)); done',
    );
    const first = await sb.checkpoint();
    expect(first.bytesStored).toBe(200 * 4096);
    await sb.exec('echo changed >> d/f7');
    const second = await sb.checkpoint();
    expect(second.bytesStored).toBe(4096 + 8);
    // mtime set back does not hide a change: ctime and size still differ.
    await sb.exec('printf x > d/f8 && touch -d "2001-01-01" d/f8');
    const third = await sb.checkpoint();
    expect(third.bytesStored).toBe(1);
    await sb.rollback(first);
    expect((await sb.exec('wc -c < d/f7')).stdout.trim()).toBe('4096');
  });
});

describe('the local definition: sweep and doctor', () => {
  it('sweep lists on a dry run, honours ids and age, then removes; doctor says what it needs and enforces', async () => {
    const sweepRoot = await mkdtemp(join(tmpdir(), 'agentbox-local-sweep-'));
    try {
      for (const id of ['one', 'two']) {
        const sb = await openSandbox({ backend: 'local', id, config: { root: sweepRoot, keep: true } });
        await sb.close();
      }
      await mkdir(join(sweepRoot, 'not-a-sandbox'));
      // Another user's sandbox under the same (shared) root; only root can make one here.
      const isRoot = process.getuid?.() === 0;
      if (isRoot) {
        await mkdir(join(sweepRoot, 'theirs', 'workspace'), { recursive: true });
        await chown(join(sweepRoot, 'theirs'), 4242, 4242);
      } else console.warn('local.test.ts: not root, so no directory of another user is tried in the sweep');
      const config = LocalConfigSchema.parse({ root: sweepRoot });
      const dry = await local.sweep!({ config, dryRun: true });
      expect(dry.location).toBe(`under ${sweepRoot}`);
      expect(dry.sandboxes.map((s) => [s.id, s.removed, s.resources[0]?.type])).toEqual([
        ['one', false, 'directory'],
        ['two', false, 'directory'],
      ]);
      expect((await local.sweep!({ config, dryRun: false, olderThanMs: 3_600_000 })).sandboxes).toEqual([]);
      const one = await local.sweep!({ config, dryRun: false, ids: ['one'] });
      expect(one.sandboxes).toMatchObject([{ id: 'one', removed: true }]);
      expect((await readdir(sweepRoot)).sort()).toEqual([
        'not-a-sandbox',
        ...(isRoot ? ['theirs'] : []),
        'two',
      ]);
      if (isRoot) {
        const rest = await local.sweep!({ config, dryRun: false });
        expect(rest.sandboxes.map((s) => s.id)).toEqual(['two']);
        const all = await local.sweep!({ config, dryRun: false, all: true });
        expect(all.sandboxes).toMatchObject([{ id: 'theirs', removed: true }]);
        expect(await readdir(sweepRoot)).toEqual(['not-a-sandbox']);
      }

      const report = await local.doctor!({ config });
      expect(report.ok).toBe(true);
      // bubblewrap and the egress relay are reported too; they fail the report only with isolation: 'bwrap'.
      expect(report.checks.map((c) => c.name)).toEqual([
        'sh',
        'root directory',
        'bubblewrap',
        'egress relay',
      ]);
      expect(report.controls.isolation?.status).toBe('not-supported');
      await writeFile(join(sweepRoot, 'file'), 'not a directory');
      const blocked = await local.doctor!({
        config: LocalConfigSchema.parse({ root: join(sweepRoot, 'file', 'boxes') }),
      });
      expect(blocked.ok).toBe(false);
      expect(blocked.checks).toContainEqual({
        name: 'root directory',
        ok: false,
        detail: `${join(sweepRoot, 'file')} is not a directory`,
      });
    } finally {
      await rm(sweepRoot, { recursive: true, force: true });
    }
  });
});
