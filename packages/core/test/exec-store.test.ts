/**
 * ExecCheckpointStore driven through a local `sh` (dash and GNU tools here; the docker backend's
 * tests drive it through busybox in a container). The exec is the only way the store touches the tree.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ExecCheckpointStore, type StoreExec } from '../src/backend.js';
import { BATCH } from '../src/checkpoint/engine/script.js';

let dir: string;
let root: string;
let storeDir: string;
let execs: { argv: string[]; stdin: string }[];

/** Runs argv here, recording each call; `failOn` makes a call fail as a crash would. */
function localExec(failOn?: (argv: readonly string[], stdin: string) => boolean): StoreExec {
  return (argv, { stdin }) => {
    execs.push({ argv: [...argv], stdin: Buffer.from(stdin ?? []).toString('latin1') });
    if (failOn?.(argv, Buffer.from(stdin ?? []).toString('latin1')))
      return Promise.resolve({ exitCode: 137, stdout: new Uint8Array(), stderr: Buffer.from('killed') });
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: 'pipe' });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c) => out.push(c));
      child.stderr.on('data', (c) => err.push(c));
      child.on('error', reject);
      child.on('close', (code) =>
        resolve({ exitCode: code ?? 128, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }),
      );
      child.stdin.end(stdin ? Buffer.from(stdin) : undefined);
    });
  };
}

/** Whether the stores the tests make are told the tree cannot change under them (archives). */
let frozen = false;

function newStore(exec: StoreExec = localExec()): ExecCheckpointStore {
  return new ExecCheckpointStore({ exec, root, storeDir, preserveOwnership: false, frozen });
}

const at = (p: string) => join(root, p);
const read = (p: string) => fs.readFile(at(p), 'utf8');

/** Every entry below the root (names as raw bytes): path → type, mode, content or target. */
async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(rel: Buffer) {
    const abs = Buffer.concat([Buffer.from(root), rel]);
    const names = (await fs.readdir(abs, { encoding: 'buffer' })).sort(Buffer.compare);
    for (const name of names) {
      const path = Buffer.concat([rel, Buffer.from('/'), name]);
      const full = Buffer.concat([Buffer.from(root), path]);
      const st = await fs.lstat(full);
      const mode = (st.mode & 0o7777).toString(8);
      const key = path.toString('latin1').slice(1);
      if (st.isSymbolicLink()) out[key] = `link -> ${await fs.readlink(full)}`;
      else if (st.isDirectory()) {
        out[key] = `dir ${mode}`;
        await walk(path);
      } else out[key] = `file ${mode} ${(await fs.readFile(full)).toString('base64')}`;
    }
  }
  await walk(Buffer.alloc(0));
  return out;
}

beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'agentbox-exec-store-'));
  root = join(dir, 'tree');
  storeDir = join(dir, 'store');
  await fs.mkdir(root);
  execs = [];
  frozen = false;
  await fs.writeFile(at('a.txt'), 'alpha\n');
  await fs.mkdir(at('sub/deep'), { recursive: true });
  await fs.writeFile(at('sub/deep/b.bin'), Buffer.from([0, 1, 2, 255, 254]));
  await fs.writeFile(at('run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  await fs.symlink('sub/deep/b.bin', at('link'));
});

afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe.each([
  { mode: 'files copied one by one', archives: false },
  { mode: 'a frozen tree, archived', archives: true },
])('ExecCheckpointStore ($mode)', ({ archives }) => {
  beforeEach(() => {
    frozen = archives;
  });

  it('restores exactly: new files gone, changed and deleted ones back, modes and symlinks kept', async () => {
    const store = newStore();
    const before = await snapshot();
    const info = await store.create({ label: 'first', signal: undefined });
    expect(info.entries).toBe(Object.keys(before).length);
    expect(info.label).toBe('first');

    await fs.writeFile(at('new.txt'), 'new');
    await fs.mkdir(at('newdir/x'), { recursive: true });
    await fs.appendFile(at('a.txt'), 'appended in place\n');
    await fs.rm(at('sub/deep/b.bin'));
    await fs.chmod(at('run.sh'), 0o600);
    await fs.rm(at('link'));
    await fs.symlink('elsewhere', at('link'));
    await fs.rm(at('sub/deep'), { recursive: true });
    await fs.writeFile(at('sub/deep'), 'now a file');

    await store.restore(info.id, undefined);
    expect(await snapshot()).toEqual(before);
    expect(await read('a.txt')).toBe('alpha\n');
  });

  it('more files than one batch: each is stored with its own hash, the batches hashed while the next is copied', async () => {
    const count = BATCH * 2 + 7;
    await fs.mkdir(at('many'));
    for (let i = 0; i < count; i++) await fs.writeFile(at(`many/f${i}`), `content ${i}\n`);
    const store = newStore();
    const info = await store.create({ label: undefined, signal: undefined });
    expect(info.bytesStored).toBeGreaterThan(count * 10);
    const stage = execs.find((e) => e.stdin.includes('sha256sum'))!;
    expect(stage.stdin.match(/^b /gm)).toHaveLength(3);
    const manifest = JSON.parse(
      (await fs.readFile(join(storeDir, 'checkpoints', `${info.id}.manifest`), 'latin1')).split('\n')[0]!,
    ) as { entries: { path: string; hash?: string }[] };
    const hashes = new Map(manifest.entries.map((e) => [e.path, e.hash]));
    for (const i of [0, BATCH - 1, BATCH, count - 1])
      expect(hashes.get(`many/f${i}`)).toBe(createHash('sha256').update(`content ${i}\n`).digest('hex'));
    // Nothing of the staging is left in the store's tmp.
    expect((await fs.readdir(join(storeDir, 'tmp'))).filter((f) => !f.startsWith('.'))).toEqual([]);
    for (let i = 0; i < count; i += 100) await fs.writeFile(at(`many/f${i}`), 'changed\n');
    await store.restore(info.id, undefined);
    expect(await read(`many/f${count - 1}`)).toBe(`content ${count - 1}\n`);
    expect(await read('many/f400')).toBe('content 400\n');
  });

  it('copies only what changed: cost follows the change, not the tree', async () => {
    const store = newStore();
    await fs.writeFile(at('big.bin'), Buffer.alloc(1_000_000, 7));
    // A file changed in the same clock tick as a listing is not trusted later: let a tick pass.
    await new Promise((r) => setTimeout(r, 50));
    const first = await store.create({ label: undefined, signal: undefined });
    expect(first.bytesStored).toBeGreaterThanOrEqual(1_000_000);
    await fs.writeFile(at('a.txt'), 'changed!\n');
    const second = await store.create({ label: undefined, signal: undefined });
    expect(second.bytesStored).toBe('changed!\n'.length);
    // Nothing changed: nothing stored. Only the file changed a moment ago is looked at again
    // (its timestamps are too recent to trust); the large unchanged one is not even copied.
    execs = [];
    const third = await store.create({ label: undefined, signal: undefined });
    expect(third.bytesStored).toBe(0);
    const copied = execs.map((e) => e.stdin).join('');
    expect(copied).not.toContain('./big.bin');
  });

  it('says when it has read the tree: after the listing and the copies, before the manifest is written', async () => {
    const store = newStore();
    const text = (e: { argv: string[]; stdin: string }) => `${e.argv.join(' ')} ${e.stdin}`;
    for (const change of [true, false]) {
      if (change) await fs.writeFile(at('a.txt'), 'changed\n');
      execs = [];
      let readAt: number | undefined;
      await store.create({ label: undefined, signal: undefined, treeRead: () => (readAt = execs.length) });
      expect(readAt).toBeGreaterThan(0);
      const before = execs.slice(0, readAt);
      const after = execs.slice(readAt);
      expect(before.some((e) => text(e).includes('xargs -0'))).toBe(true);
      expect(before.some((e) => text(e).includes('.manifest'))).toBe(false);
      expect(after.some((e) => text(e).includes('.manifest'))).toBe(true);
      // Nothing after it names the tree.
      expect(after.filter((e) => text(e).includes(root))).toEqual([]);
    }
  });

  it.each(['stat', 'find'])(
    'a listing whose %s fails (a file gone while it was listed) is taken again',
    async (tool) => {
      // The tool does its work and then fails, once: as it does when a file goes in the middle.
      const bin = join(dir, 'bin');
      await fs.mkdir(bin);
      const real = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
      const listing = tool === 'stat' ? '[ "$*" != "${*#*./a.txt}" ]' : '[ "$*" != "${*#*-print0}" ]';
      await fs.writeFile(
        join(bin, tool),
        `#!/bin/sh\n"${real}" "$@" || exit\nif ${listing} && [ ! -e "${dir}/failed" ]; then : > "${dir}/failed"; exit 1; fi\n`,
        { mode: 0o755 },
      );
      vi.stubEnv('PATH', `${bin}:${process.env.PATH}`);
      try {
        const store = newStore();
        const before = await snapshot();
        const info = await store.create({ label: undefined, signal: undefined });
        await fs.access(join(dir, 'failed'));
        expect(execs.filter((e) => e.argv[2]?.includes('xargs -0'))).toHaveLength(2);
        expect(info.entries).toBe(Object.keys(before).length);
        await fs.writeFile(at('a.txt'), 'changed\n');
        await store.restore(info.id, undefined);
        expect(await snapshot()).toEqual(before);
      } finally {
        vi.unstubAllEnvs();
      }
    },
  );

  it('an entry carried over from the last capture is the one a new process makes from the listing', async () => {
    const entriesOf = async (id: string) => {
      const text = await fs.readFile(join(storeDir, 'checkpoints', `${id}.manifest`), 'latin1');
      return JSON.parse(text.split('\n')[0]!).entries;
    };
    const store = newStore();
    await new Promise((r) => setTimeout(r, 50));
    await store.create({ label: undefined, signal: undefined });
    await fs.writeFile(at('a.txt'), 'changed\n');
    await fs.writeFile(at('sub/new'), 'new\n');
    await fs.chmod(at('run.sh'), 0o700);
    await fs.rm(at('link'));
    await new Promise((r) => setTimeout(r, 50));
    // Some entries carried, some parsed; then all carried; then all parsed by a new process.
    const mixed = await store.create({ label: undefined, signal: undefined });
    const carried = await store.create({ label: undefined, signal: undefined });
    const parsed = await newStore().create({ label: undefined, signal: undefined });
    expect(await entriesOf(carried.id)).toEqual(await entriesOf(mixed.id));
    expect(await entriesOf(parsed.id)).toEqual(await entriesOf(carried.id));
    expect((await entriesOf(parsed.id)).map((e: { path: string }) => e.path)).toEqual([
      'a.txt',
      'run.sh',
      'sub',
      'sub/deep',
      'sub/deep/b.bin',
      'sub/new',
    ]);
  });

  it.each([
    ['its checkpoint is deleted', (store: ExecCheckpointStore, id: string) => store.delete(id)],
    [
      'its copy is found damaged',
      async (store: ExecCheckpointStore) => {
        for (const name of await fs.readdir(join(storeDir, 'packs'), { recursive: true })) {
          const path = join(storeDir, 'packs', name);
          if (!(await fs.stat(path)).isFile()) continue;
          await fs.chmod(path, 0o644);
          await fs.appendFile(path, 'damage');
        }
        expect((await store.verify()).ok).toBe(false);
      },
    ],
  ])(
    'an unchanged file is not carried over once %s: the next checkpoint copies it again',
    async (_, lose) => {
      const store = newStore();
      // Old enough to be trusted (and so carried over) from the first checkpoint on.
      await new Promise((r) => setTimeout(r, 50));
      const first = await store.create({ label: undefined, signal: undefined });
      await lose(store, first.id);
      const next = await store.create({ label: undefined, signal: undefined });
      expect(next.bytesStored).toBeGreaterThan(0);
      const before = await snapshot();
      await fs.writeFile(at('a.txt'), 'changed\n');
      await fs.rm(at('sub/deep/b.bin'));
      await store.restore(next.id, undefined);
      expect(await snapshot()).toEqual(before);
    },
  );

  it('sees a change that kept size and mtime (ctime cannot be set back)', async () => {
    const store = newStore();
    await fs.writeFile(at('same.txt'), 'AAAA');
    const old = new Date('2020-01-01T00:00:00Z');
    await fs.utimes(at('same.txt'), old, old);
    await new Promise((r) => setTimeout(r, 50));
    const first = await store.create({ label: undefined, signal: undefined });
    await fs.writeFile(at('same.txt'), 'BBBB');
    await fs.utimes(at('same.txt'), old, old);
    const second = await store.create({ label: undefined, signal: undefined });
    expect(second.bytesStored).toBe(4);
    await store.restore(first.id, undefined);
    expect(await read('same.txt')).toBe('AAAA');
    await store.restore(second.id, undefined);
    expect(await read('same.txt')).toBe('BBBB');
  });

  it('stores identical content once, and restores every copy of it', async () => {
    const store = newStore();
    const same = Buffer.alloc(100_000, 9);
    for (const name of ['one.bin', 'two.bin', 'sub/three.bin']) await fs.writeFile(at(name), same);
    await fs.chmod(at('two.bin'), 0o600);
    const before = await snapshot();
    const info = await store.create({ label: undefined, signal: undefined });
    // Copied one by one, the duplicates are dropped; archived, they stay in the archive (not referenced).
    if (archives) expect(info.bytesStored).toBeGreaterThanOrEqual(3 * same.length);
    else expect(info.bytesStored).toBeLessThan(2 * same.length);
    const manifest = JSON.parse(
      (await fs.readFile(join(storeDir, 'checkpoints', `${info.id}.manifest`), 'latin1')).split('\n')[0]!,
    ) as { entries: { path: string; object?: { path?: string } }[] };
    const referenced = manifest.entries.filter((e) => e.object && e.path.endsWith('.bin') && !e.object.path);
    expect(referenced).toHaveLength(2); // b.bin, and one of the three copies
    for (const name of ['one.bin', 'two.bin', 'sub/three.bin']) await fs.writeFile(at(name), 'gone');
    await store.restore(info.id, undefined);
    expect(await snapshot()).toEqual(before);
  });

  it('keeps several checkpoints: older after newer, and repeated rollbacks', async () => {
    const store = newStore();
    const v1 = await store.create({ label: 'v1', signal: undefined });
    await fs.writeFile(at('a.txt'), 'v2\n');
    await fs.writeFile(at('only-v2'), 'x');
    const v2 = await store.create({ label: 'v2', signal: undefined });
    await fs.writeFile(at('a.txt'), 'v3\n');
    await store.restore(v1.id, undefined);
    expect(await read('a.txt')).toBe('alpha\n');
    await expect(fs.access(at('only-v2'))).rejects.toThrow();
    await store.restore(v2.id, undefined);
    expect(await read('a.txt')).toBe('v2\n');
    await fs.writeFile(at('a.txt'), 'scribble');
    await store.restore(v2.id, undefined);
    await store.restore(v2.id, undefined);
    expect(await read('a.txt')).toBe('v2\n');
    expect((await store.list()).map((c) => c.label)).toEqual(['v1', 'v2']);
  });

  it('round-trips any file name: spaces, quotes, newlines, leading dashes, bytes that are not UTF-8', async () => {
    const names = ['with space \'quoted\' "double"', 'line\nbreak', '-dash', 'ünï ✓', '$(touch pwned)'];
    const rawName = Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e]); // "f\xff\xfe.bin"
    for (const n of names) await fs.writeFile(at(n), n);
    await fs.writeFile(Buffer.concat([Buffer.from(`${root}/`), rawName]), 'raw');
    const store = newStore();
    const before = await snapshot();
    const info = await store.create({ label: 'names ✓ "quoted"', signal: undefined });
    for (const n of names) await fs.rm(at(n));
    await fs.rm(Buffer.concat([Buffer.from(`${root}/`), rawName]));
    await store.restore(info.id, undefined);
    expect(await snapshot()).toEqual(before);
    expect((await fs.readFile(Buffer.concat([Buffer.from(`${root}/`), rawName]))).toString()).toBe('raw');
    await expect(fs.access(at('pwned'))).rejects.toThrow();
    expect((await store.list())[0]!.label).toBe('names ✓ "quoted"');
  });

  it('restores read-only directories and their contents', async () => {
    await fs.mkdir(at('locked'));
    await fs.writeFile(at('locked/f'), 'inside');
    await fs.chmod(at('locked'), 0o555);
    const store = newStore();
    const before = await snapshot();
    const info = await store.create({ label: undefined, signal: undefined });
    await fs.chmod(at('locked'), 0o755);
    await fs.writeFile(at('locked/f'), 'changed');
    await fs.writeFile(at('locked/g'), 'extra');
    await fs.chmod(at('locked'), 0o500);
    await store.restore(info.id, undefined);
    expect(await snapshot()).toEqual(before);
  });

  it('never shares storage with the live tree: appending in place does not reach the checkpoint', async () => {
    const store = newStore();
    const info = await store.create({ label: undefined, signal: undefined });
    await store.restore(info.id, undefined);
    const handle = await fs.open(at('a.txt'), 'a');
    await handle.write('more\n');
    await handle.close();
    await store.restore(info.id, undefined);
    expect(await read('a.txt')).toBe('alpha\n');
    const inodes = new Set<bigint>();
    for (const name of await fs.readdir(join(storeDir, 'packs'), { recursive: true })) {
      const st = await fs.stat(join(storeDir, 'packs', name), { bigint: true });
      if (st.isFile()) inodes.add(st.ino);
    }
    expect(inodes.has((await fs.stat(at('a.txt'), { bigint: true })).ino)).toBe(false);
  });

  it('a crash while writing a checkpoint leaves the earlier ones intact', async () => {
    const good = await newStore().create({ label: 'good', signal: undefined });
    await fs.writeFile(at('a.txt'), 'half-saved\n');
    const crashing = newStore(localExec((argv) => argv[1] === '-c' && argv[2]!.includes('count_bytes')));
    await expect(crashing.create({ label: 'crashed', signal: undefined })).rejects.toThrow(
      /writing checkpoint/,
    );
    const store = newStore();
    expect((await store.list()).map((c) => c.label)).toEqual(['good']);
    await store.restore(good.id, undefined);
    expect(await read('a.txt')).toBe('alpha\n');
  });

  it('a commit whose input was cut short is not a checkpoint, even when the shell exits 0', async () => {
    const good = await newStore().create({ label: 'good', signal: undefined });
    await fs.writeFile(at('a.txt'), 'cut short\n');
    const plain = localExec();
    // The manifest and info arrive whole, the script after them does not: `sh -s` reads nothing and exits 0.
    const cutting: StoreExec = (argv, opts) =>
      argv[2]?.includes('count_bytes') && opts.stdin
        ? plain(argv, { ...opts, stdin: opts.stdin.subarray(0, Number(argv[6]) + Number(argv[7])) })
        : plain(argv, opts);
    await expect(newStore(cutting).create({ label: 'cut', signal: undefined })).rejects.toThrow(
      /writing checkpoint/,
    );
    const store = newStore();
    expect((await store.list()).map((c) => c.label)).toEqual(['good']);
    await store.restore(good.id, undefined);
    expect(await read('a.txt')).toBe('alpha\n');
  });

  it('a new process re-attaches: checkpoints listed, unchanged files not copied again', async () => {
    await fs.writeFile(at('big.bin'), Buffer.alloc(500_000, 1));
    await new Promise((r) => setTimeout(r, 50));
    const first = await newStore().create({ label: 'before restart', signal: undefined });
    const again = newStore();
    expect((await again.list()).map((c) => c.id)).toEqual([first.id]);
    await fs.writeFile(at('a.txt'), 'after restart\n');
    const second = await again.create({ label: undefined, signal: undefined });
    expect(second.bytesStored).toBe('after restart\n'.length);
    await again.restore(first.id, undefined);
    expect(await read('a.txt')).toBe('alpha\n');
  });

  it('delete removes the checkpoint and the objects only it used', async () => {
    const store = newStore();
    const v1 = await store.create({ label: undefined, signal: undefined });
    await fs.writeFile(at('only-in-v2.txt'), 'unique content of v2');
    const v2 = await store.create({ label: undefined, signal: undefined });
    const objects = async () => (await fs.readdir(join(storeDir, 'packs'), { recursive: true })).length;
    const withBoth = await objects();
    await store.delete(v2.id);
    expect((await store.list()).map((c) => c.id)).toEqual([v1.id]);
    expect(await objects()).toBeLessThan(withBoth);
    await store.restore(v1.id, undefined);
    await expect(store.restore(v2.id, undefined)).rejects.toMatchObject({ code: 'CHECKPOINT_NOT_FOUND' });
    // After the delete, a file whose object went away is stored again.
    await fs.writeFile(at('only-in-v2.txt'), 'unique content of v2');
    const v3 = await store.create({ label: undefined, signal: undefined });
    await store.restore(v1.id, undefined);
    await store.restore(v3.id, undefined);
    expect(await read('only-in-v2.txt')).toBe('unique content of v2');
  });

  it('unknown ids are CHECKPOINT_NOT_FOUND; the store must live outside the tree', async () => {
    const store = newStore();
    await expect(store.restore('ckpt-nope-00000000', undefined)).rejects.toMatchObject({
      code: 'CHECKPOINT_NOT_FOUND',
    });
    await expect(store.restore('../../etc/passwd', undefined)).rejects.toMatchObject({
      code: 'CHECKPOINT_NOT_FOUND',
    });
    await expect(store.delete('ckpt-nope-00000000')).rejects.toMatchObject({ code: 'CHECKPOINT_NOT_FOUND' });
    expect(() => new ExecCheckpointStore({ exec: localExec(), root, storeDir: join(root, 'store') })).toThrow(
      /outside/,
    );
  });
});

describe('ExecCheckpointStore against a hostile store', () => {
  const key = new Uint8Array(32).fill(42);
  const manifestFile = (id: string) => join(storeDir, 'checkpoints', `${id}.manifest`);
  const keyed = () =>
    new ExecCheckpointStore({
      exec: localExec(),
      root,
      storeDir,
      preserveOwnership: false,
      manifestKey: key,
    });

  /** Rewrite a manifest's JSON line (keeping any MAC line, which then no longer matches). */
  async function rewrite(
    id: string,
    change: (m: { entries: Record<string, unknown>[]; info: { label?: string } }) => void,
  ) {
    const [json, ...rest] = (await fs.readFile(manifestFile(id), 'latin1')).split('\n');
    const m = JSON.parse(json!);
    change(m);
    await fs.writeFile(manifestFile(id), [JSON.stringify(m), ...rest].join('\n'), 'latin1');
  }

  it('refuses an edited manifest (a path leaving the tree) and restores nothing', async () => {
    const store = newStore();
    const info = await store.create({ label: undefined, signal: undefined });
    await fs.writeFile(at('a.txt'), 'after\n');
    await rewrite(info.id, (m) => {
      m.entries.find((e) => e.path === 'a.txt')!.path = '../escaped.txt';
    });
    const before = await snapshot();
    await expect(newStore().restore(info.id, undefined)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
    });
    expect(await snapshot()).toEqual(before);
    await expect(fs.access(join(dir, 'escaped.txt'))).rejects.toThrow();
  });

  it('refuses shell text in uid and a forged object reference', async () => {
    const info = await newStore().create({ label: undefined, signal: undefined });
    await rewrite(info.id, (m) => {
      m.entries[0]!.uid = '0; touch pwned';
    });
    await expect(newStore().restore(info.id, undefined)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
    });
    const other = await newStore().create({ label: undefined, signal: undefined });
    await rewrite(other.id, (m) => {
      const file = m.entries.find((e) => e.type === 'file')!;
      file.object = { pack: (file.object as { pack: string }).pack, path: '../../../etc/passwd' };
    });
    await expect(newStore().restore(other.id, undefined)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
    });
    await expect(fs.access(at('pwned'))).rejects.toThrow();
  });

  it('with a key: a manifest whose MAC fails is left out of list() and refused on restore', async () => {
    const store = keyed();
    const good = await store.create({ label: 'good', signal: undefined });
    await fs.writeFile(at('a.txt'), 'v2\n');
    const forged = await store.create({ label: 'forged', signal: undefined });
    // Rewritten to restore other content; the MAC no longer matches.
    await rewrite(forged.id, (m) => {
      m.info.label = 'trust me';
    });
    const info = join(storeDir, 'checkpoints', `${forged.id}.info`);
    await fs.writeFile(info, (await fs.readFile(info, 'latin1')).replace('forged', 'looks ok'), 'latin1');
    const fresh = keyed();
    expect((await fresh.list()).map((c) => c.label)).toEqual(['good']);
    await expect(fresh.restore(forged.id, undefined)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    expect(await read('a.txt')).toBe('v2\n');
    // A manifest written without a key is not accepted by a store that has one.
    const unkeyed = await newStore().create({ label: 'unkeyed', signal: undefined });
    await expect(keyed().restore(unkeyed.id, undefined)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
    });
    await keyed().restore(good.id, undefined);
    expect(await read('a.txt')).toBe('alpha\n');
  });

  it('an object whose content no longer matches its hash: CHECKPOINT_CORRUPT, nothing restored', async () => {
    const store = newStore();
    const info = await store.create({ label: undefined, signal: undefined });
    for (const name of await fs.readdir(join(storeDir, 'packs'), { recursive: true })) {
      const path = join(storeDir, 'packs', name);
      if ((await fs.stat(path)).isFile() && name.endsWith('a.txt')) {
        await fs.chmod(path, 0o644);
        await fs.writeFile(path, 'evil\n');
      }
    }
    await fs.writeFile(at('a.txt'), 'live\n');
    await fs.writeFile(at('extra'), 'x');
    await fs.rm(at('sub/deep/b.bin'));
    const before = await snapshot();
    await expect(newStore().restore(info.id, undefined)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
    });
    expect(await snapshot()).toEqual(before);
  });

  it('never restores through a live symlink put where a directory was', async () => {
    const outside = join(dir, 'outside');
    await fs.mkdir(outside);
    const store = newStore();
    const before = await snapshot();
    const info = await store.create({ label: undefined, signal: undefined });
    await fs.rm(at('sub'), { recursive: true });
    await fs.symlink(outside, at('sub'));
    await store.restore(info.id, undefined);
    expect(await snapshot()).toEqual(before);
    expect(await fs.readdir(outside)).toEqual([]);
  });

  it('round-trips names with U+0127, $(), quotes and newlines in directories too', async () => {
    const names = ['\u0127', "q'\u0127'$(touch pwned)", 'nl\n\u0127', '`id`'];
    for (const n of names) {
      await fs.mkdir(at(n));
      await fs.writeFile(at(`${n}/${n}`), n);
    }
    const store = newStore();
    const before = await snapshot();
    const info = await store.create({ label: undefined, signal: undefined });
    for (const n of names) await fs.rm(at(n), { recursive: true });
    await fs.writeFile(at(names[0]!), 'now a file');
    await store.restore(info.id, undefined);
    expect(await snapshot()).toEqual(before);
    await expect(fs.access(at('pwned'))).rejects.toThrow();
  });
});

describe('ExecCheckpointStore: scrub and cut-short rollbacks', () => {
  /** The pack file holding `content`. */
  async function packFile(content: string): Promise<{ object: string; path: string }> {
    for (const file of await fs.readdir(join(storeDir, 'packs'), { recursive: true })) {
      const path = join(storeDir, 'packs', file);
      if ((await fs.stat(path)).isFile() && (await fs.readFile(path, 'utf8')) === content)
        return { object: file, path };
    }
    throw new Error(`no object holds ${content}`);
  }

  it('verify names each damaged object and manifest and the checkpoints they break; rollback refuses them', async () => {
    const store = newStore();
    const a = await store.create({ label: 'A', signal: undefined });
    await fs.writeFile(at('a.txt'), 'beta\n');
    const b = await store.create({ label: 'B', signal: undefined });
    await fs.writeFile(at('c.txt'), 'gamma\n');
    const c = await store.create({ label: 'C', signal: undefined });
    expect(await newStore().verify()).toMatchObject({ ok: true, intact: [a.id, b.id, c.id] });

    const rewritten = await packFile('alpha\n');
    await fs.chmod(rewritten.path, 0o644);
    await fs.writeFile(rewritten.path, 'evil\n');
    const gone = await packFile('gamma\n');
    await fs.rm(gone.path);
    await fs.writeFile(join(storeDir, 'checkpoints', `${b.id}.manifest`), '{"version":2');

    const report = await newStore().verify();
    expect(report).toMatchObject({
      ok: false,
      intact: [],
      damagedManifests: [{ id: b.id, reason: expect.stringMatching(/corrupt/) }],
      interruptedRollback: undefined,
    });
    expect(report.damagedObjects).toEqual(
      expect.arrayContaining([
        { object: rewritten.object, reason: 'mismatch', checkpoints: [a.id] },
        { object: gone.object, reason: 'missing', checkpoints: [c.id] },
      ]),
    );
    expect(report.damagedObjects).toHaveLength(2);
    // Each rollback needs the damaged content (a restore reads, and so hashes, only what it writes).
    await fs.writeFile(at('a.txt'), 'live\n');
    await fs.rm(at('c.txt'));
    const before = await snapshot();
    for (const broken of [a, b, c])
      await expect(newStore().restore(broken.id, undefined)).rejects.toMatchObject({
        code: 'CHECKPOINT_CORRUPT',
      });
    expect(await snapshot()).toEqual(before);
  });

  it('many objects to restore are hashed before the restore script too: one damaged, nothing restored', async () => {
    for (let i = 0; i < 70; i++) await fs.writeFile(at(`many-${i}.txt`), `many ${i}\n`);
    const info = await newStore().create({ label: undefined, signal: undefined });
    for (let i = 0; i < 70; i++) await fs.writeFile(at(`many-${i}.txt`), `changed ${i}\n`);
    const damaged = await packFile('many 5\n');
    await fs.chmod(damaged.path, 0o644);
    await fs.writeFile(damaged.path, 'evil\n');
    const before = await snapshot();
    await expect(newStore().restore(info.id, undefined)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
    });
    expect(await snapshot()).toEqual(before);
  });

  it('a restore script cut short leaves its record; a finished restore removes it (and a stale one)', async () => {
    const store = newStore();
    const info = await store.create({ label: undefined, signal: undefined });
    await fs.writeFile(at('a.txt'), 'changed\n');
    await fs.writeFile(at('extra'), 'x');
    expect(await store.interruptedRollback()).toBeUndefined();
    // The restore script dies right after its first change, and so does the library (nothing runs after).
    let dead = false;
    const dying = newStore(
      localExec((argv, stdin) => {
        if (dead) return true;
        if (!stdin.includes('rollback-pending')) return false;
        dead = true;
        const cut = stdin.replace(/^(rm -rf -- .*)$/m, '$1\nexit 137');
        void localExec()(argv, { stdin: Buffer.from(cut, 'latin1') });
        return true;
      }),
    );
    await expect(dying.restore(info.id, undefined)).rejects.toThrow(/rollback/);
    await vi.waitFor(async () =>
      expect(await newStore().interruptedRollback()).toEqual({ checkpointId: info.id }),
    );
    expect((await newStore().verify()).interruptedRollback).toEqual({ checkpointId: info.id });
    await newStore().restore(info.id, undefined);
    expect(await newStore().interruptedRollback()).toBeUndefined();
    expect(await read('a.txt')).toBe('alpha\n');

    // A record found where the tree already matches: removed without a script.
    await fs.writeFile(join(storeDir, 'rollback-pending'), 'not a record\n');
    expect(await newStore().interruptedRollback()).toEqual({ checkpointId: undefined });
    await newStore().restore(info.id, undefined);
    expect(await newStore().interruptedRollback()).toBeUndefined();

    // A restore that fails while this process lives reports it to the caller and leaves no record.
    await fs.writeFile(at('a.txt'), 'changed again\n');
    await fs.writeFile(at('extra'), 'removed first');
    const real = localExec();
    const failing = newStore((argv, opts) => {
      const stdin = Buffer.from(opts.stdin ?? []).toString('latin1');
      if (!stdin.includes('rollback-pending')) return real(argv, opts);
      const cut = stdin.replace(/^(rm -rf -- .*)$/m, '$1\nexit 9');
      return real(argv, { ...opts, stdin: Buffer.from(cut, 'latin1') });
    });
    await expect(failing.restore(info.id, undefined)).rejects.toThrow(/rollback/);
    expect(await newStore().interruptedRollback()).toBeUndefined();
  });

  it('a restore script that outlives its caller: the next listing waits for it, so two restores never interleave', async () => {
    const store = newStore();
    const info = await store.create({ label: undefined, signal: undefined });
    const want = await snapshot();
    await fs.writeFile(at('a.txt'), 'changed\n');
    await fs.writeFile(at('extra'), 'x');
    // The caller is cut off as the script starts (a lost connection: the exec rejects, as a
    // transport does, so the store keeps the record): the script goes on, slowly.
    const done = join(dir, 'first-script-done');
    let script: Promise<unknown> | undefined;
    const real = localExec();
    const cutOff = newStore((argv, opts) => {
      const stdin = Buffer.from(opts.stdin ?? []).toString('latin1');
      if (!stdin.includes('rollback-pending')) return real(argv, opts);
      // Marked done before its last lines, which remove the owner file the next listing waits on.
      const slow = stdin.replace(/^(rm -rf -- .*)$/m, `$1\nsleep 1.5\n: > '${done}'`);
      script = real(argv, { ...opts, stdin: Buffer.from(slow, 'latin1') });
      return Promise.reject(new Error('the connection dropped'));
    });
    await expect(cutOff.restore(info.id, undefined)).rejects.toThrow(/connection dropped/);
    // The re-attach finds the record and rolls back again while the first script still runs.
    await vi.waitFor(async () =>
      expect(await newStore().interruptedRollback()).toEqual({ checkpointId: info.id }),
    );
    const started = Date.now();
    await newStore().restore(info.id, undefined);
    expect(
      await fs.stat(done).then(
        () => true,
        () => false,
      ),
    ).toBe(true);
    expect(Date.now() - started).toBeGreaterThan(500);
    await script;
    expect(await snapshot()).toEqual(want);
    expect(await newStore().interruptedRollback()).toBeUndefined();
  });

  it('an owner file naming a process that is gone, or a pid now reused, does not hold anything up', async () => {
    const store = newStore();
    const info = await store.create({ label: undefined, signal: undefined });
    await fs.writeFile(at('a.txt'), 'changed\n');
    const stat = await fs.readFile(`/proc/${process.pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    for (const owner of [`${process.pid} 1${start}`, '999999999 12345', `${process.pid}`, '']) {
      await fs.writeFile(join(storeDir, 'restore-owner'), `${owner}\n`);
      const t = Date.now();
      await newStore().create({ label: undefined, signal: undefined });
      expect(Date.now() - t, `owner ${JSON.stringify(owner)}`).toBeLessThan(1_000);
    }
    // The live process itself, with its start time, is waited for (120 s at most: aborted here).
    await fs.writeFile(join(storeDir, 'restore-owner'), `${process.pid} ${start}\n`);
    const waiting = newStore().restore(info.id, undefined);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await read('a.txt')).toBe('changed\n');
    await fs.rm(join(storeDir, 'restore-owner'));
    await waiting;
    expect(await read('a.txt')).toBe('alpha\n');
  });
});

describe('ExecCheckpointStore: archives of a frozen tree', () => {
  beforeEach(() => {
    frozen = true;
  });

  /** Every archive of the store: `pack/k.tar` → its path. */
  async function archives(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const name of await fs.readdir(join(storeDir, 'packs'), { recursive: true }))
      if (name.endsWith('.tar')) out.set(name, join(storeDir, 'packs', name));
    return out;
  }

  it('a first checkpoint of many files makes a few archives, not a file each; one change restores from its archive', async () => {
    await fs.mkdir(at('many'));
    for (let i = 0; i < 900; i++) await fs.writeFile(at(`many/f${i}`), `content ${i}\n`);
    const store = newStore();
    const before = await snapshot();
    const info = await store.create({ label: undefined, signal: undefined });
    const stored = await fs.readdir(join(storeDir, 'packs'), { recursive: true });
    expect(stored.filter((n) => n.includes('/'))).toHaveLength(3); // 903 files: 400 + 400 + 103
    expect([...(await archives()).keys()].every((n) => /^[0-9a-f]{16}\/\d\.tar$/.test(n))).toBe(true);
    await fs.writeFile(at('many/f450'), 'changed\n');
    await fs.rm(at('many/f7'));
    execs = [];
    await store.restore(info.id, undefined);
    expect(await snapshot()).toEqual(before);
    // Two archives hashed (inline, by the restore script), their members taken by name.
    const restore = execs.map((e) => e.stdin).find((s) => s.includes('rollback-pending'))!;
    expect(restore.match(/^c /gm)).toHaveLength(2);
    expect(restore.match(/^y /gm)).toHaveLength(2);
  });

  it('names tar would read as patterns (* ? [ \\) restore exactly, in place and from another path', async () => {
    const names = ['a[1]', 'a1', 'b*c', 'bxc', 'q?', 'qx', 'back\\slash'];
    for (const n of names) await fs.writeFile(at(n), `content of ${n}\n`);
    await fs.writeFile(at('copy-of-a[1]'), 'content of a[1]\n');
    const store = newStore();
    const before = await snapshot();
    const info = await store.create({ label: undefined, signal: undefined });
    for (const n of names) await fs.writeFile(at(n), 'changed\n');
    await fs.rm(at('copy-of-a[1]'));
    await store.restore(info.id, undefined);
    expect(await snapshot()).toEqual(before);
    // The unpacked archive is gone from the store's tmp.
    expect((await fs.readdir(join(storeDir, 'tmp'))).filter((f) => f.startsWith('unpack-'))).toEqual([]);
  });

  it('two names of one inode go into different archives, and both restore with their content', async () => {
    await fs.writeFile(at('first'), 'shared inode\n');
    await fs.link(at('first'), at('second'));
    const store = newStore();
    const info = await store.create({ label: undefined, signal: undefined });
    expect((await archives()).size).toBe(2);
    await fs.rm(at('first'));
    await fs.rm(at('second'));
    await store.restore(info.id, undefined);
    expect(await read('first')).toBe('shared inode\n');
    expect(await read('second')).toBe('shared inode\n');
  });

  it('an archive whose bytes changed: CHECKPOINT_CORRUPT and nothing restored; verify names it and its checkpoints', async () => {
    for (let i = 0; i < 70; i++) await fs.writeFile(at(`many-${i}.txt`), `many ${i}\n`);
    const store = newStore();
    const info = await store.create({ label: 'A', signal: undefined });
    const [name, path] = [...(await archives())][0]!;
    const bytes = await fs.readFile(path!);
    bytes[bytes.indexOf('many 5\n')] = 'M'.charCodeAt(0);
    await fs.chmod(path!, 0o644);
    await fs.writeFile(path!, bytes);
    await fs.writeFile(at('a.txt'), 'live\n');
    const before = await snapshot();
    await expect(newStore().restore(info.id, undefined)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
    });
    expect(await snapshot()).toEqual(before);
    // More than the restore script checks inline: hashed by a script of their own first.
    for (let i = 0; i < 70; i++) await fs.writeFile(at(`many-${i}.txt`), `changed ${i}\n`);
    await expect(newStore().restore(info.id, undefined)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
    });
    const report = await newStore().verify();
    expect(report).toMatchObject({
      ok: false,
      damagedObjects: [{ object: name, reason: 'mismatch', checkpoints: [info.id] }],
    });
  });

  it('a manifest naming an archive without its hash is refused', async () => {
    const store = newStore();
    const info = await store.create({ label: undefined, signal: undefined });
    const file = join(storeDir, 'checkpoints', `${info.id}.manifest`);
    const [json, ...rest] = (await fs.readFile(file, 'latin1')).split('\n');
    const m = JSON.parse(json!);
    delete m.tars;
    await fs.writeFile(file, [JSON.stringify(m), ...rest].join('\n'), 'latin1');
    await fs.writeFile(at('a.txt'), 'live\n');
    await expect(newStore().restore(info.id, undefined)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
    });
    expect(await read('a.txt')).toBe('live\n');
  });

  it('delete removes archives no checkpoint needs and keeps those one does', async () => {
    await fs.mkdir(at('many'));
    for (let i = 0; i < 500; i++) await fs.writeFile(at(`many/f${i}`), `content ${i}\n`);
    const store = newStore();
    const v1 = await store.create({ label: undefined, signal: undefined });
    const first = [...(await archives()).values()].sort();
    expect(first).toHaveLength(2);
    // Every file of one archive changes: v2 needs only the other archive of v1.
    const members = execFileSync('tar', ['-tf', first[0]!], { encoding: 'latin1' })
      .split('\n')
      .filter(Boolean);
    await new Promise((r) => setTimeout(r, 50));
    for (const m of members) await fs.writeFile(at(m), `v2 ${m}\n`);
    const v2 = await store.create({ label: undefined, signal: undefined });
    await store.delete(v1.id);
    const left = [...(await archives()).values()];
    expect(first.filter((p) => left.includes(p))).toEqual([first[1]]);
    for (let i = 0; i < 500; i++) await fs.writeFile(at(`many/f${i}`), 'scribble');
    await store.restore(v2.id, undefined);
    for (let i = 0; i < 500; i++) {
      const m = `./many/f${i}`;
      expect(await read(m)).toBe(members.includes(m) ? `v2 ${m}\n` : `content ${i}\n`);
    }
    expect(await newStore().verify()).toMatchObject({ ok: true, intact: [v2.id] });
  });
});
