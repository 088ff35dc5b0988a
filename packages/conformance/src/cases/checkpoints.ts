/** Checkpoints: rollback restores the tree exactly (content, modes, symlinks), many times, to any checkpoint. */
import type { CheckpointInfo, SandboxBackend } from '@agentbox/core';
import { expect } from 'vitest';
import { defineGroup } from '../case.js';
import { expectBytes, expectError, MiB, output, randomBytes, run } from '../helpers.js';

/** Every entry under `dir` with its type, mode, size and content hash (files) or target (links). */
async function snapshot(sandbox: SandboxBackend, dir: string): Promise<string> {
  const script = `cd "$1" && find . | sort | while IFS= read -r p; do
    if [ -L "$p" ]; then echo "L $p -> $(readlink "$p")";
    elif [ -d "$p" ]; then echo "D $p $(stat -c %a "$p")";
    else echo "F $p $(stat -c '%a %s' "$p") $(sha256sum < "$p" | cut -d' ' -f1)"; fi
  done`;
  return output(sandbox, ['sh', '-c', script, 'sh', dir]);
}

/** Shell for a small tree with nested directories, a binary file, modes and symlinks. */
const BUILD_TREE = `cd "$1" && mkdir -p sub/deeper empty-dir &&
  printf 'one\\n' > a.txt && printf 'nested\\n' > sub/b.txt && printf 'deep\\n' > sub/deeper/c.txt &&
  head -c 65536 /dev/urandom > sub/blob.bin && printf '#!/bin/sh\\necho hi\\n' > tool.sh && chmod 755 tool.sh &&
  printf private > secret.txt && chmod 600 secret.txt && chmod 700 sub/deeper && printf dot > .hidden &&
  ln -s a.txt link-to-a && ln -s sub link-to-dir && ln -s no-such-target dangling`;

async function buildTree(sandbox: SandboxBackend, dir: string): Promise<string> {
  await run(sandbox, ['sh', '-c', BUILD_TREE, 'sh', dir]);
  return snapshot(sandbox, dir);
}

const NO_CHECKPOINTS = 'capabilities.checkpoints is false: this backend has no checkpoints';

export const checkpointCases = defineGroup({
  name: 'checkpoints',
  sandbox: 'own',
  unsupported: (sandbox) => (sandbox.capabilities.checkpoints ? undefined : NO_CHECKPOINTS),
  cases: [
    {
      id: 'checkpoints.restore-modified',
      title: 'files modified after a checkpoint come back exactly',
      async run({ sandbox, dir }) {
        const before = await buildTree(sandbox, dir);
        const cp = await sandbox.checkpoint({ label: 'restore-modified' });
        await run(sandbox, [
          'sh',
          '-c',
          'cd "$1" && printf "changed and longer\\n" > a.txt && head -c 100 /dev/urandom > sub/blob.bin && printf x > .hidden',
          'sh',
          dir,
        ]);
        expect(await snapshot(sandbox, dir)).not.toBe(before);
        await sandbox.rollback(cp);
        expect(await snapshot(sandbox, dir)).toBe(before);
        expect(await sandbox.readTextFile(`${dir}/a.txt`)).toBe('one\n');
      },
    },
    {
      id: 'checkpoints.restore-deleted',
      title: 'files and directories deleted after a checkpoint come back',
      async run({ sandbox, dir }) {
        const before = await buildTree(sandbox, dir);
        const cp = await sandbox.checkpoint();
        await run(sandbox, [
          'sh',
          '-c',
          'cd "$1" && rm -rf sub a.txt empty-dir link-to-a .hidden',
          'sh',
          dir,
        ]);
        await sandbox.rollback(cp.id);
        expect(await snapshot(sandbox, dir)).toBe(before);
      },
    },
    {
      id: 'checkpoints.remove-created',
      title: 'files, directories and links created after a checkpoint are gone after rollback',
      async run({ sandbox, dir }) {
        const before = await buildTree(sandbox, dir);
        const cp = await sandbox.checkpoint();
        await run(sandbox, [
          'sh',
          '-c',
          'cd "$1" && echo new > new.txt && mkdir -p new-dir/inner new-empty && echo x > new-dir/inner/f && ln -s a.txt new-link && echo y > sub/new-in-old-dir',
          'sh',
          dir,
        ]);
        await sandbox.writeFile(`${dir}/written-after.txt`, 'after');
        await sandbox.rollback(cp);
        expect(await snapshot(sandbox, dir)).toBe(before);
        await expectError(sandbox, 'NOT_FOUND', () => sandbox.readFile(`${dir}/written-after.txt`));
      },
    },
    {
      id: 'checkpoints.restore-modes',
      title: 'modes changed after a checkpoint are restored',
      async run({ sandbox, dir }) {
        const before = await buildTree(sandbox, dir);
        const cp = await sandbox.checkpoint();
        await run(sandbox, [
          'sh',
          '-c',
          'cd "$1" && chmod 644 tool.sh && chmod 666 secret.txt && chmod 755 sub/deeper && chmod 700 sub',
          'sh',
          dir,
        ]);
        await sandbox.rollback(cp);
        expect(await snapshot(sandbox, dir)).toBe(before);
        expect((await output(sandbox, ['./tool.sh'], { cwd: dir })).trim()).toBe('hi');
      },
    },
    {
      id: 'checkpoints.restore-symlinks',
      title: 'symlinks are kept as links with their targets (dangling ones too)',
      async run({ sandbox, dir }) {
        const before = await buildTree(sandbox, dir);
        const cp = await sandbox.checkpoint();
        await run(sandbox, [
          'sh',
          '-c',
          'cd "$1" && rm link-to-a && ln -s sub/b.txt link-to-a && rm dangling && echo now-a-file > dangling && rm link-to-dir',
          'sh',
          dir,
        ]);
        await sandbox.rollback(cp);
        expect(await snapshot(sandbox, dir)).toBe(before);
        const links = await output(sandbox, [
          'sh',
          '-c',
          'cd "$1" && for l in link-to-a link-to-dir dangling; do readlink "$l"; done',
          'sh',
          dir,
        ]);
        expect(links).toBe('a.txt\nsub\nno-such-target\n');
      },
    },
    {
      id: 'checkpoints.append-in-place',
      title: 'a file changed in place after a checkpoint (append, overwrite in the middle) comes back whole',
      async run({ sandbox, dir }) {
        const big = randomBytes(MiB);
        await sandbox.writeFile(`${dir}/log.txt`, 'line1\n');
        await sandbox.writeFile(`${dir}/big.bin`, big);
        const cp = await sandbox.checkpoint();
        await run(sandbox, [
          'sh',
          '-c',
          'cd "$1" && echo x >> log.txt && printf XXXXXXXX | dd of=big.bin bs=1 seek=4096 conv=notrunc 2>/dev/null',
          'sh',
          dir,
        ]);
        expect(await sandbox.readTextFile(`${dir}/log.txt`)).toBe('line1\nx\n');
        await sandbox.rollback(cp);
        expect(await sandbox.readTextFile(`${dir}/log.txt`)).toBe('line1\n');
        expectBytes(await sandbox.readFile(`${dir}/big.bin`), big, 'big.bin after rollback');
        // Appending again must not reach into the checkpoint's copy either.
        await run(sandbox, ['sh', '-c', 'echo y >> "$1"', 'sh', `${dir}/log.txt`]);
        await sandbox.rollback(cp);
        expect(await sandbox.readTextFile(`${dir}/log.txt`)).toBe('line1\n');
      },
    },
    {
      id: 'checkpoints.backdated-change',
      title: 'a same-size change with the mtime set back is still captured and restored',
      async run({ sandbox, dir }) {
        const sameSize = (content: string) =>
          run(sandbox, [
            'sh',
            '-c',
            'cd "$1" && printf "$2" > f.txt && touch -r ref f.txt',
            'sh',
            dir,
            content,
          ]);
        await run(sandbox, ['sh', '-c', 'cd "$1" && printf aaaa > f.txt && touch -r f.txt ref', 'sh', dir]);
        const first = await sandbox.checkpoint();
        // Same size, same mtime as at the first checkpoint: only ctime tells it changed.
        await sameSize('bbbb');
        const second = await sandbox.checkpoint();
        await sameSize('cccc');
        await sandbox.rollback(second);
        expect(await sandbox.readTextFile(`${dir}/f.txt`)).toBe('bbbb');
        await sandbox.rollback(first);
        expect(await sandbox.readTextFile(`${dir}/f.txt`)).toBe('aaaa');
      },
    },
    {
      id: 'checkpoints.several',
      title: 'several checkpoints coexist; rolling back to an older one after a newer one works',
      // Three checkpoints and three rollbacks: over ssh on a loaded 2-core machine that took 23 s.
      timeoutMs: 60_000,
      async run({ sandbox, dir }) {
        const states: { cp: CheckpointInfo; snap: string }[] = [];
        for (const version of [1, 2, 3]) {
          await run(sandbox, [
            'sh',
            '-c',
            'cd "$1" && echo "v$2" > version.txt && echo "$2" > "only-$2.txt"',
            'sh',
            dir,
            String(version),
          ]);
          states.push({
            cp: await sandbox.checkpoint({ label: `v${version}` }),
            snap: await snapshot(sandbox, dir),
          });
        }
        for (const index of [0, 2, 1, 0]) {
          const { cp, snap } = states[index]!;
          await sandbox.rollback(index === 2 ? cp.id : cp);
          expect(await snapshot(sandbox, dir), `after rolling back to ${cp.label}`).toBe(snap);
          expect(await sandbox.readTextFile(`${dir}/version.txt`)).toBe(`v${index + 1}\n`);
        }
      },
    },
    {
      id: 'checkpoints.rollback-twice',
      title: 'rollback to the same checkpoint can be repeated',
      async run({ sandbox, dir }) {
        const before = await buildTree(sandbox, dir);
        const cp = await sandbox.checkpoint();
        for (let round = 0; round < 3; round++) {
          await run(sandbox, [
            'sh',
            '-c',
            'cd "$1" && echo "round $2" >> a.txt && rm -f sub/b.txt && echo n > "n$2"',
            'sh',
            dir,
            String(round),
          ]);
          await sandbox.rollback(cp);
          expect(await snapshot(sandbox, dir)).toBe(before);
        }
        await sandbox.rollback(cp);
        expect(await snapshot(sandbox, dir)).toBe(before);
      },
    },
    {
      id: 'checkpoints.list',
      title: 'listCheckpoints shows ids, labels and creation order',
      async run({ sandbox, dir }) {
        await sandbox.writeFile(`${dir}/f.txt`, '1');
        const a = await sandbox.checkpoint({ label: 'list-a' });
        await sandbox.writeFile(`${dir}/f.txt`, '2');
        const b = await sandbox.checkpoint();
        await sandbox.writeFile(`${dir}/f.txt`, '3');
        const c = await sandbox.checkpoint({ label: 'list-c' });
        expect(new Set([a.id, b.id, c.id]).size).toBe(3);
        expect(a.label).toBe('list-a');
        expect(b.label).toBeUndefined();
        for (const info of [a, b, c]) {
          const created = Date.parse(info.createdAt);
          expect(Number.isNaN(created), `createdAt ${info.createdAt}`).toBe(false);
          expect(Math.abs(Date.now() - created)).toBeLessThan(3_600_000);
          expect(info.entries).toBeGreaterThan(0);
          expect(info.bytesStored).toBeGreaterThanOrEqual(0);
        }
        const listed = await sandbox.listCheckpoints();
        const ours = listed.filter((info) => [a.id, b.id, c.id].includes(info.id));
        expect(ours.map((info) => info.id)).toEqual([a.id, b.id, c.id]);
        expect(ours.map((info) => info.label)).toEqual(['list-a', undefined, 'list-c']);
      },
    },
    {
      id: 'checkpoints.delete',
      title: 'a deleted checkpoint is gone (CHECKPOINT_NOT_FOUND) and the others still restore',
      async run({ sandbox, dir }) {
        const before = await buildTree(sandbox, dir);
        const older = await sandbox.checkpoint();
        await sandbox.writeFile(`${dir}/extra.txt`, 'extra');
        const newer = await sandbox.checkpoint();
        const snapNewer = await snapshot(sandbox, dir);
        await sandbox.deleteCheckpoint(older.id);
        expect((await sandbox.listCheckpoints()).map((info) => info.id)).not.toContain(older.id);
        await expectError(sandbox, 'CHECKPOINT_NOT_FOUND', () => sandbox.rollback(older), 'rollback');
        // The newer checkpoint shares most content with the deleted one and must not have lost it.
        await run(sandbox, ['sh', '-c', 'cd "$1" && rm -rf sub a.txt && echo z > extra.txt', 'sh', dir]);
        await sandbox.rollback(newer);
        expect(await snapshot(sandbox, dir)).toBe(snapNewer);
        expect(snapNewer).not.toBe(before);
      },
    },
    {
      id: 'checkpoints.unknown-id',
      title: 'rolling back to an id that never existed is CHECKPOINT_NOT_FOUND and changes nothing',
      async run({ sandbox, dir }) {
        await sandbox.writeFile(`${dir}/keep.txt`, 'keep');
        await expectError(
          sandbox,
          'CHECKPOINT_NOT_FOUND',
          () => sandbox.rollback('agentbox-no-such-checkpoint'),
          'rollback',
        );
        const fake: CheckpointInfo = {
          id: 'cp-never-made',
          label: undefined,
          createdAt: new Date().toISOString(),
          entries: 1,
          bytesStored: 0,
        };
        await expectError(sandbox, 'CHECKPOINT_NOT_FOUND', () => sandbox.rollback(fake));
        expect(await sandbox.readTextFile(`${dir}/keep.txt`)).toBe('keep');
      },
    },
    {
      id: 'checkpoints.odd-names',
      title:
        'names with pattern characters, backslashes, leading dashes and spaces, hard links and identical copies come back exactly',
      async run({ sandbox, dir }) {
        // Pattern characters matter where a store selects archive members by name (tar matches some as patterns).
        const make = String.raw`cd "$1" && for n in 'a[1]' a1 'b*c' bxc 'q?' qx 'back\slash' -dash 'two  spaces'; do
            printf 'content of %s
' "$n" > "./$n"; done &&
          mkdir 'dir[x]' && printf same > 'dir[x]/in*dir' && printf same > copy && ln a1 hard-a1`;
        await run(sandbox, ['sh', '-c', make, 'sh', dir]);
        const before = await snapshot(sandbox, dir);
        const cp = await sandbox.checkpoint({ label: 'odd-names' });
        const change = String.raw`cd "$1" && printf changed > 'a[1]' && printf changed > 'b*c' && printf x > a1 &&
          rm -f 'q?' 'back\slash' ./-dash hard-a1 && rm -rf 'dir[x]' && printf changed > copy`;
        await run(sandbox, ['sh', '-c', change, 'sh', dir]);
        expect(await snapshot(sandbox, dir)).not.toBe(before);
        await sandbox.rollback(cp);
        expect(await snapshot(sandbox, dir)).toBe(before);
        expect(await sandbox.readTextFile(`${dir}/back\\slash`)).toBe('content of back\\slash\n');
      },
    },
    {
      id: 'checkpoints.usable-after-rollback',
      title: 'the same handle keeps working after rollback: exec, spawn, files, more checkpoints',
      async run({ sandbox, dir }) {
        await sandbox.writeFile(`${dir}/f.txt`, 'before');
        const cp = await sandbox.checkpoint();
        await sandbox.writeFile(`${dir}/f.txt`, 'after');
        await sandbox.rollback(cp);
        expect(await output(sandbox, 'echo works')).toBe('works\n');
        expect((await output(sandbox, 'pwd -P')).trim()).toBe(
          (await output(sandbox, ['sh', '-c', 'cd "$1" && pwd -P', 'sh', sandbox.workdir])).trim(),
        );
        if (sandbox.capabilities.spawn)
          expect((await sandbox.spawn(['cat', `${dir}/f.txt`]).wait()).stdout).toBe('before');
        await sandbox.writeFile(`${dir}/g.txt`, 'new');
        const again = await sandbox.checkpoint();
        await sandbox.writeFile(`${dir}/g.txt`, 'newer');
        await sandbox.rollback(again);
        expect(await sandbox.readTextFile(`${dir}/g.txt`)).toBe('new');
      },
    },
    {
      id: 'checkpoints.large-tree',
      title:
        'a 10,000-file tree: checkpoint, change, delete, add, rollback restores count and content quickly',
      timeoutMs: 90_000,
      async run({ open, ms }) {
        // A sandbox of its own, so the other cases' files do not count.
        const sandbox = await open();
        const root = `${sandbox.workdir}/tree`;
        const make = `mkdir -p "$1" && cd "$1" && d=0; while [ $d -lt 100 ]; do mkdir d$d; f=0;
          while [ $f -lt 100 ]; do echo "file $d/$f" > d$d/f$f; f=$((f+1)); done; d=$((d+1)); done`;
        await run(sandbox, ['sh', '-c', make, 'sh', root]);
        const summary = async () =>
          output(sandbox, [
            'sh',
            '-c',
            'cd "$1" && find . -type f | wc -l && find . -type f | sort | xargs cat | sha256sum',
            'sh',
            root,
          ]);
        const before = await summary();
        expect(before.split('\n')[0]?.trim()).toBe('10000');
        const t0 = Date.now();
        const cp = await sandbox.checkpoint({ label: 'large-tree' });
        const checkpointMs = Date.now() - t0;
        await run(sandbox, [
          'sh',
          '-c',
          'cd "$1" && echo changed >> d50/f50 && rm -rf d7 && rm d8/f1 d8/f2 && mkdir added && i=0; while [ $i -lt 50 ]; do echo $i > added/$i; i=$((i+1)); done',
          'sh',
          root,
        ]);
        expect(await summary()).not.toBe(before);
        const t1 = Date.now();
        await sandbox.rollback(cp);
        const rollbackMs = Date.now() - t1;
        expect(await summary()).toBe(before);
        expect(await sandbox.readTextFile(`${root}/d50/f50`)).toBe('file 50/50\n');
        expect(
          checkpointMs + rollbackMs,
          `checkpoint ${checkpointMs} ms + rollback ${rollbackMs} ms`,
        ).toBeLessThan(ms(20_000));
      },
    },
  ],
});
