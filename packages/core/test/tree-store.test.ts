/**
 * TreeCheckpointStore (the host-tree store) against a hostile store directory: validated and
 * authenticated manifests, hash-checked objects, and the shared restore plan's rules.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TreeCheckpointStore } from '../src/backend.js';

/** A directory the scan's next readdir of it removes first (as a racing process would, after the lstat). */
const vanish = vi.hoisted(() => ({ path: undefined as string | undefined }));
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const readdirSync = ((path: Parameters<typeof real.readdirSync>[0], options?: unknown) => {
    if (vanish.path !== undefined && String(path) === vanish.path) {
      real.rmSync(vanish.path, { recursive: true });
      vanish.path = undefined;
    }
    return (real.readdirSync as (p: unknown, o?: unknown) => unknown)(path, options);
  }) as typeof real.readdirSync;
  return { ...real, default: { ...real, readdirSync }, readdirSync };
});

let dir: string;
let root: string;
let storeDir: string;
const key = new Uint8Array(32).fill(3);
const at = (p: string) => join(root, p);
const newStore = (manifestKey?: Uint8Array) =>
  new TreeCheckpointStore({ root, storeDir, ...(manifestKey ? { manifestKey } : {}) });
const manifestFile = (id: string) => join(storeDir, 'manifests', `${id}.json`);

async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await fs.readdir(root, { recursive: true })).sort()) {
    const st = await fs.lstat(at(name));
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[name] = `link ${await fs.readlink(at(name))}`;
    else if (st.isDirectory()) out[name] = `dir ${mode}`;
    else out[name] = `file ${mode} ${await fs.readFile(at(name), 'latin1')}`;
  }
  return out;
}

async function rewrite(id: string, change: (m: { entries: Record<string, unknown>[] }) => void) {
  const [json, ...rest] = (await fs.readFile(manifestFile(id), 'latin1')).split('\n');
  const m = JSON.parse(json!);
  change(m);
  await fs.writeFile(manifestFile(id), [JSON.stringify(m), ...rest].join('\n'), 'latin1');
}

beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'agentbox-tree-store-'));
  root = join(dir, 'tree');
  storeDir = join(dir, 'store');
  await fs.mkdir(at('sub/deep'), { recursive: true });
  await fs.writeFile(at('a.txt'), 'alpha\n');
  await fs.writeFile(at('sub/deep/b.txt'), 'beta\n');
  await fs.symlink('sub/deep/b.txt', at('link'));
});

afterEach(async () => {
  await fs.chmod(root, 0o755).catch(() => {});
  await fs.rm(dir, { recursive: true, force: true });
});

describe('TreeCheckpointStore', () => {
  it('restores exactly, odd names included (quotes, newlines, $(), U+0127)', async () => {
    for (const n of ['q\'"', 'nl\nx', '$(touch pwned)', '\u0127']) await fs.writeFile(at(n), n);
    const store = newStore();
    const before = await snapshot();
    const info = await store.create({ label: 'ħ' });
    await fs.writeFile(at('a.txt'), 'changed');
    await fs.rm(at('sub'), { recursive: true });
    await fs.writeFile(at('sub'), 'now a file');
    await fs.writeFile(at('new'), 'new');
    await store.restore(info.id);
    expect(await snapshot()).toEqual(before);
    expect((await newStore().list())[0]!.label).toBe('ħ');
  });

  it('round-trips names that are not UTF-8 (files, directories, link targets)', async () => {
    const raw = (name: number[]) => Buffer.concat([Buffer.from(`${root}/`), Buffer.from(name)]);
    const dirName = [0x64, 0xff, 0x27];
    await fs.mkdir(raw(dirName));
    await fs.writeFile(Buffer.concat([raw(dirName), Buffer.from([0x2f, 0xc4, 0xfe])]), 'inside');
    await fs.symlink(Buffer.from([0x74, 0xfe]), raw([0x6c, 0x80]));
    const store = newStore();
    const info = await store.create({ label: undefined });
    await fs.rm(raw(dirName), { recursive: true });
    await fs.rm(raw([0x6c, 0x80]));
    await store.restore(info.id);
    expect(await fs.readFile(Buffer.concat([raw(dirName), Buffer.from([0x2f, 0xc4, 0xfe])]), 'utf8')).toBe(
      'inside',
    );
    expect(await fs.readlink(raw([0x6c, 0x80]), { encoding: 'buffer' })).toEqual(Buffer.from([0x74, 0xfe]));
  });

  it('opens read-only directories before restoring into them (and removing below them)', async () => {
    await fs.mkdir(at('locked'));
    await fs.writeFile(at('locked/f'), 'inside');
    await fs.chmod(at('locked'), 0o555);
    const store = newStore();
    const before = await snapshot();
    const info = await store.create({ label: undefined });
    await fs.chmod(at('locked'), 0o755);
    await fs.writeFile(at('locked/f'), 'changed');
    await fs.writeFile(at('locked/g'), 'extra');
    await fs.mkdir(at('locked/ro'));
    await fs.writeFile(at('locked/ro/x'), 'x');
    await fs.chmod(at('locked/ro'), 0o500);
    await fs.chmod(at('locked'), 0o500);
    await store.restore(info.id);
    expect(await snapshot()).toEqual(before);
  });

  it('a directory removed between its lstat and its readdir is left out, not an error', async () => {
    const store = newStore();
    vanish.path = at('sub/deep');
    const info = await store.create({ label: undefined });
    expect(vanish.path).toBeUndefined();
    expect(info.entries).toBe(3); // a.txt, link, sub
    const expected = await snapshot();
    await fs.rm(at('sub'), { recursive: true });
    await store.restore(info.id);
    expect(await snapshot()).toEqual(expected);
  });

  it('never restores through a live symlink put where a directory was', async () => {
    const outside = join(dir, 'outside');
    await fs.mkdir(outside);
    const store = newStore();
    const before = await snapshot();
    const info = await store.create({ label: undefined });
    await fs.rm(at('sub'), { recursive: true });
    await fs.symlink(outside, at('sub'));
    await store.restore(info.id);
    expect(await snapshot()).toEqual(before);
    expect(await fs.readdir(outside)).toEqual([]);
  });

  it('refuses a hostile manifest (path leaving the tree, bad mode) with CHECKPOINT_CORRUPT', async () => {
    const store = newStore();
    const info = await store.create({ label: undefined });
    await rewrite(info.id, (m) => {
      m.entries.find((e) => e.path === 'a.txt')!.path = '../escaped';
    });
    await expect(newStore().restore(info.id)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    const other = await store.create({ label: undefined });
    await rewrite(other.id, (m) => {
      m.entries[0]!.mode = 0.5;
    });
    await expect(newStore().restore(other.id)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    await expect(fs.access(join(dir, 'escaped'))).rejects.toThrow();
    expect(await newStore().list()).toEqual([]);
  });

  it('with a key: a forged manifest is left out of list() and refused on restore', async () => {
    const store = newStore(key);
    const good = await store.create({ label: 'good' });
    await fs.writeFile(at('a.txt'), 'v2\n');
    const forged = await store.create({ label: 'forged' });
    await fs.writeFile(
      manifestFile(forged.id),
      (await fs.readFile(manifestFile(forged.id), 'latin1')).replace('forged', 'fake!!'),
    );
    const fresh = newStore(key);
    expect((await fresh.list()).map((c) => c.label)).toEqual(['good']);
    await expect(fresh.restore(forged.id)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    const unkeyed = await newStore().create({ label: 'unkeyed' });
    await expect(newStore(key).restore(unkeyed.id)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    await fresh.restore(good.id);
    expect(await fs.readFile(at('a.txt'), 'utf8')).toBe('alpha\n');
  });

  it('an object that no longer matches its hash: CHECKPOINT_CORRUPT, nothing restored', async () => {
    const store = newStore();
    const info = await store.create({ label: undefined });
    const packs = (await fs.readdir(join(storeDir, 'packs'))).filter((n) => n.endsWith('.pack'));
    expect(packs).toHaveLength(1);
    await fs.chmod(join(storeDir, 'packs', packs[0]!), 0o600);
    await fs.writeFile(join(storeDir, 'packs', packs[0]!), 'evil');
    await fs.writeFile(at('a.txt'), 'live\n');
    await fs.writeFile(at('extra'), 'x');
    const before = await snapshot();
    await expect(newStore().restore(info.id)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    expect(await snapshot()).toEqual(before);
  });

  it('a checkpoint writes its new objects into one pack, each content once (small files and streamed large ones)', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 'x');
    for (let i = 0; i < 200; i++) await fs.writeFile(at(`sub/f${i}`), `file ${i}\n`);
    await fs.writeFile(at('sub/same-as-a'), 'alpha\n');
    await fs.writeFile(at('big1'), big);
    await fs.writeFile(at('big2'), big);
    const store = newStore();
    const first = await store.create({ label: undefined });
    const names = (await fs.readdir(join(storeDir, 'packs'))).sort();
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^pack-[0-9a-z]+-[0-9a-f]{8}\.idx$/);
    expect(names[1]).toBe(names[0]!.replace(/\.idx$/, '.pack'));
    await expect(fs.access(join(storeDir, 'objects'))).rejects.toMatchObject({ code: 'ENOENT' });
    // alpha, beta, 200 small files, the big content once.
    const small = 'alpha\n'.length + 'beta\n'.length;
    const files = Array.from({ length: 200 }, (_, i) => `file ${i}\n`.length).reduce((a, b) => a + b, 0);
    expect((await fs.stat(join(storeDir, 'packs', names[1]!))).size).toBe(small + files + big.length);
    expect(first.bytesStored).toBe(small + files + big.length);

    // A second checkpoint that finds its large file's content stored already gives its bytes back.
    await fs.writeFile(at('big3'), big);
    await fs.writeFile(at('a.txt'), 'changed\n');
    const second = await store.create({ label: undefined });
    expect(second.bytesStored).toBe('changed\n'.length);
    const packs = (await fs.readdir(join(storeDir, 'packs'))).filter((n) => n.endsWith('.pack'));
    const sizes = await Promise.all(packs.map(async (n) => (await fs.stat(join(storeDir, 'packs', n))).size));
    expect(sizes.sort((a, b) => a - b)[0]).toBe('changed\n'.length);

    const before = await snapshot();
    await fs.rm(at('sub'), { recursive: true });
    await fs.writeFile(at('big1'), 'short');
    await newStore().restore(first.id);
    const back = await snapshot();
    expect(back['a.txt']).toBe('file 644 alpha\n');
    expect(back['sub/f199']).toBe('file 644 file 199\n');
    // Compared as one value: a deep equality walks 3 MB byte by byte.
    expect(Buffer.compare(await fs.readFile(at('big1')), big)).toBe(0);
    await newStore().restore(second.id);
    expect(await snapshot()).toEqual(before);
    expect(await newStore().verify()).toMatchObject({ ok: true });
  });

  it('a checkpoint whose only new content is an empty file makes a pack of it (empty), and restores it', async () => {
    const store = newStore();
    await store.create({ label: undefined });
    await fs.writeFile(at('empty'), '');
    const info = await store.create({ label: undefined });
    await fs.writeFile(at('empty'), 'not empty now');
    await newStore().restore(info.id);
    expect(await fs.readFile(at('empty'), 'utf8')).toBe('');
    expect(await newStore().verify()).toMatchObject({ ok: true });
  });

  it('delete removes the packs no checkpoint needs and rewrites one that is mostly unneeded', async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, 'b');
    await fs.writeFile(at('big'), big);
    const store = newStore();
    const a = await store.create({ label: 'a' });
    await fs.rm(at('big'));
    await fs.writeFile(at('new.txt'), 'new\n');
    const b = await store.create({ label: 'b' });
    const packs = async () => (await fs.readdir(join(storeDir, 'packs'))).filter((n) => n.endsWith('.pack'));
    expect(await packs()).toHaveLength(2);

    // b still needs alpha and beta from a's pack, not the 2 MB: that pack is written again.
    await store.delete(a.id);
    const left = await packs();
    expect(left).toHaveLength(2);
    const sizes = await Promise.all(left.map(async (n) => (await fs.stat(join(storeDir, 'packs', n))).size));
    expect(sizes.reduce((x, y) => x + y, 0)).toBe('alpha\n'.length + 'beta\n'.length + 'new\n'.length);
    await fs.writeFile(at('a.txt'), 'changed\n');
    await newStore().restore(b.id);
    expect(await fs.readFile(at('a.txt'), 'utf8')).toBe('alpha\n');
    expect(await newStore().verify()).toMatchObject({ ok: true, intact: [b.id] });

    await newStore().delete(b.id);
    expect(await fs.readdir(join(storeDir, 'packs'))).toEqual([]);
  });

  it('a delete in one process keeps the pack another process added since it read the store', async () => {
    const one = newStore();
    const first = await one.create({ label: 'first' });
    await fs.writeFile(at('new.txt'), 'from the other process\n');
    const second = await newStore().create({ label: 'second' });
    await one.delete(first.id);
    await fs.writeFile(at('new.txt'), 'changed\n');
    await newStore().restore(second.id);
    expect(await fs.readFile(at('new.txt'), 'utf8')).toBe('from the other process\n');
  });

  it('a large object still needed is streamed into the rewritten pack', async () => {
    const live = Buffer.alloc(1536 * 1024, 'L');
    await fs.writeFile(at('live.bin'), live);
    await fs.writeFile(at('dead.bin'), Buffer.alloc(2 * 1024 * 1024, 'D'));
    const store = newStore();
    const a = await store.create({ label: 'a' });
    await fs.rm(at('dead.bin'));
    const b = await store.create({ label: 'b' });
    await store.delete(a.id);
    const packs = (await fs.readdir(join(storeDir, 'packs'))).filter((n) => n.endsWith('.pack'));
    expect(packs).toHaveLength(1);
    expect((await fs.stat(join(storeDir, 'packs', packs[0]!))).size).toBe(
      live.length + 'alpha\n'.length + 'beta\n'.length,
    );
    await fs.writeFile(at('live.bin'), 'changed');
    await newStore().restore(b.id);
    expect(Buffer.compare(await fs.readFile(at('live.bin')), live)).toBe(0);
    expect(await newStore().verify()).toMatchObject({ ok: true, intact: [b.id] });
  });

  it('reads and collects a store written before packs (one file per object)', async () => {
    const store = newStore();
    const info = await store.create({ label: undefined });
    // Turn the pack into the older layout: objects/<2 hex>/<62 hex>.
    const packsDir = join(storeDir, 'packs');
    const idx = (await fs.readdir(packsDir)).find((n) => n.endsWith('.idx'))!;
    const pack = await fs.readFile(join(packsDir, idx.replace(/\.idx$/, '.pack')));
    const { objects } = JSON.parse(await fs.readFile(join(packsDir, idx), 'utf8')) as {
      objects: [string, number, number][];
    };
    for (const [hash, offset, length] of objects) {
      await fs.mkdir(join(storeDir, 'objects', hash.slice(0, 2)), { recursive: true });
      await fs.writeFile(
        join(storeDir, 'objects', hash.slice(0, 2), hash.slice(2)),
        pack.subarray(offset, offset + length),
      );
    }
    await fs.rm(packsDir, { recursive: true });

    await fs.writeFile(at('a.txt'), 'changed\n');
    const older = newStore();
    await older.restore(info.id);
    expect(await fs.readFile(at('a.txt'), 'utf8')).toBe('alpha\n');
    // Content the old layout holds is not stored again.
    await fs.writeFile(at('copy.txt'), 'beta\n');
    expect((await older.create({ label: undefined })).bytesStored).toBe(0);
    expect(await older.verify()).toMatchObject({ ok: true });
    for (const c of await older.list()) await older.delete(c.id);
    const left = await fs.readdir(join(storeDir, 'objects'), { recursive: true });
    expect(left.filter((n) => n.length > 2)).toEqual([]);
  });

  it('an index that does not parse names nothing: a restore that needs its objects is CHECKPOINT_CORRUPT', async () => {
    const info = await newStore().create({ label: undefined });
    const packsDir = join(storeDir, 'packs');
    const idx = (await fs.readdir(packsDir)).find((n) => n.endsWith('.idx'))!;
    const hash = createHash('sha256').update('alpha\n').digest('hex');
    // Alpha is first in the pack: read leniently, a length given as text would still find it.
    await fs.writeFile(join(packsDir, idx), JSON.stringify({ version: 1, objects: [[hash, 0, '6']] }));
    await fs.writeFile(at('a.txt'), 'changed\n');
    await expect(newStore().restore(info.id)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    expect(await fs.readFile(at('a.txt'), 'utf8')).toBe('changed\n');
  });

  it('a pack whose index never landed (a crash) is not read: its content is stored again', async () => {
    const store = newStore();
    await store.create({ label: undefined });
    const packsDir = join(storeDir, 'packs');
    for (const n of await fs.readdir(packsDir)) if (n.endsWith('.idx')) await fs.rm(join(packsDir, n));
    const fresh = newStore();
    const again = await fresh.create({ label: undefined });
    expect(again.bytesStored).toBe('alpha\n'.length + 'beta\n'.length);
    await fs.writeFile(at('a.txt'), 'changed\n');
    await fresh.restore(again.id);
    expect(await fs.readFile(at('a.txt'), 'utf8')).toBe('alpha\n');
  });
});
