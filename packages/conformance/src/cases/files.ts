/** readFile / writeFile: byte-exact, any name, parents made, truncating, relative paths, typed errors, modes, streams. */
import type { OutputLimitError } from '@agentbox/core';
import { expect } from 'vitest';
import { defineGroup } from '../case.js';
import {
  concatBytes,
  expectBytes,
  expectError,
  MiB,
  output,
  randomBytes,
  run,
  sandboxSha256,
  sha256,
} from '../helpers.js';

export const fileCases = defineGroup({
  name: 'files',
  cases: [
    {
      id: 'files.text-round-trip',
      title: 'text written is read back and seen by commands unchanged',
      async run({ sandbox, dir }) {
        const text = 'héllo\nwörld ✓ 😀 日本語\r\nlast line without newline';
        await sandbox.writeFile(`${dir}/text.txt`, text);
        expect(await sandbox.readTextFile(`${dir}/text.txt`)).toBe(text);
        expectBytes(await sandbox.readFile(`${dir}/text.txt`), new TextEncoder().encode(text));
        expect(await output(sandbox, ['cat', `${dir}/text.txt`])).toBe(text);
      },
    },
    {
      id: 'files.binary-round-trip',
      title: 'all 256 byte values round-trip exactly, and commands see the same bytes',
      async run({ sandbox, dir }) {
        const all = Uint8Array.from({ length: 1024 }, (_, i) => i % 256);
        await sandbox.writeFile(`${dir}/bytes.bin`, all);
        expectBytes(await sandbox.readFile(`${dir}/bytes.bin`), all);
        expect(await sandboxSha256(sandbox, `${dir}/bytes.bin`)).toBe(sha256(all));
      },
    },
    {
      id: 'files.large-round-trip',
      title: 'a 50 MiB file round-trips byte-exact',
      timeoutMs: 60_000,
      async run({ sandbox, dir }) {
        const data = randomBytes(50 * MiB);
        await sandbox.writeFile(`${dir}/big.bin`, data);
        expect((await output(sandbox, ['sh', '-c', 'wc -c < "$1"', 'sh', `${dir}/big.bin`])).trim()).toBe(
          String(data.length),
        );
        expect(await sandboxSha256(sandbox, `${dir}/big.bin`)).toBe(sha256(data));
        expectBytes(await sandbox.readFile(`${dir}/big.bin`), data, '50 MiB read back');
      },
    },
    {
      id: 'files.unicode-names',
      title: 'names with unicode and spaces work both ways',
      async run({ sandbox, dir }) {
        const names = ['ünïcødé ✓ 日本語.txt', 'with space.txt', 'quote\'s "name".txt', '-leading-dash'];
        for (const name of names) await sandbox.writeFile(`${dir}/${name}`, `content of ${name}`);
        const listed = await output(sandbox, [
          'sh',
          '-c',
          'cd "$1" && for f in *; do printf "%s\\0" "$f"; done',
          'sh',
          dir,
        ]);
        expect(listed.split('\0').slice(0, -1).sort()).toEqual([...names].sort());
        for (const name of names)
          expect(await sandbox.readTextFile(`${dir}/${name}`)).toBe(`content of ${name}`);
        await run(sandbox, ['sh', '-c', 'printf made-by-sh > "$1"', 'sh', `${dir}/made by sh ✓`]);
        expect(await sandbox.readTextFile(`${dir}/made by sh ✓`)).toBe('made-by-sh');
      },
    },
    {
      id: 'files.empty',
      title: 'an empty file is written and read as empty',
      async run({ sandbox, dir }) {
        await sandbox.writeFile(`${dir}/empty.txt`, '');
        await sandbox.writeFile(`${dir}/empty.bin`, new Uint8Array(0));
        expect((await sandbox.readFile(`${dir}/empty.txt`)).length).toBe(0);
        expect((await sandbox.readFile(`${dir}/empty.bin`)).length).toBe(0);
        expect(
          await output(sandbox, ['sh', '-c', 'test -f "$1" && wc -c < "$1"', 'sh', `${dir}/empty.bin`]),
        ).toMatch(/^\s*0\s*$/);
      },
    },
    {
      id: 'files.creates-parents',
      title: 'writing creates missing parent directories',
      async run({ sandbox, dir }) {
        await sandbox.writeFile(`${dir}/a/b/c/d.txt`, 'deep');
        expect(await sandbox.readTextFile(`${dir}/a/b/c/d.txt`)).toBe('deep');
        await run(sandbox, ['test', '-d', `${dir}/a/b/c`]);
      },
    },
    {
      id: 'files.overwrite-truncates',
      title: 'writing over a longer file truncates it',
      async run({ sandbox, dir }) {
        await sandbox.writeFile(`${dir}/f.txt`, 'x'.repeat(100_000));
        await sandbox.writeFile(`${dir}/f.txt`, 'short');
        expect(await sandbox.readTextFile(`${dir}/f.txt`)).toBe('short');
        expect((await output(sandbox, ['sh', '-c', 'wc -c < "$1"', 'sh', `${dir}/f.txt`])).trim()).toBe('5');
      },
    },
    {
      id: 'files.relative-paths',
      title: 'relative paths resolve against the workdir, as for commands',
      async run({ sandbox, dir, rel }) {
        await sandbox.writeFile(`${rel}/rel.txt`, 'relative');
        expect(await output(sandbox, ['cat', `${rel}/rel.txt`])).toBe('relative');
        expect(await sandbox.readTextFile(`${dir}/rel.txt`)).toBe('relative');
        await run(sandbox, ['sh', '-c', 'printf from-exec > "$1/from-exec.txt"', 'sh', rel]);
        expect(await sandbox.readTextFile(`${rel}/from-exec.txt`)).toBe('from-exec');
        expect(await sandbox.readTextFile(`./${rel}/../${rel.split('/').pop()}/from-exec.txt`)).toBe(
          'from-exec',
        );
      },
    },
    {
      id: 'files.read-missing',
      title: 'reading a missing file is NOT_FOUND',
      async run({ sandbox, dir }) {
        await expectError(sandbox, 'NOT_FOUND', () => sandbox.readFile(`${dir}/missing.txt`), 'readFile');
        await expectError(sandbox, 'NOT_FOUND', () => sandbox.readTextFile(`${dir}/no/such/dir/file.txt`));
      },
    },
    {
      id: 'files.read-directory',
      title: 'reading a directory is IS_A_DIRECTORY',
      async run({ sandbox, dir }) {
        await run(sandbox, ['mkdir', `${dir}/sub`]);
        await expectError(sandbox, 'IS_A_DIRECTORY', () => sandbox.readFile(`${dir}/sub`), 'readFile');
      },
    },
    {
      id: 'files.write-to-directory',
      title: 'writing over a directory is IS_A_DIRECTORY and leaves it alone',
      async run({ sandbox, dir }) {
        await run(sandbox, ['sh', '-c', 'mkdir "$1/sub" && echo keep > "$1/sub/inner"', 'sh', dir]);
        await expectError(sandbox, 'IS_A_DIRECTORY', () => sandbox.writeFile(`${dir}/sub`, 'x'), 'writeFile');
        expect(await sandbox.readTextFile(`${dir}/sub/inner`)).toBe('keep\n');
      },
    },
    {
      id: 'files.permission-denied',
      title: 'reading or writing a file the sandbox user may not access is PERMISSION_DENIED',
      async run({ sandbox, dir, skip }) {
        const uid = (await output(sandbox, ['id', '-u'])).trim();
        if (uid === '0' && !sandbox.capabilities.nonRootUser)
          skip(
            'commands run as root here (uid 0, capabilities.nonRootUser false): permission checks do not apply',
          );
        await run(sandbox, ['sh', '-c', 'echo secret > "$1" && chmod 000 "$1"', 'sh', `${dir}/locked.txt`]);
        const control = await sandbox.exec(['cat', `${dir}/locked.txt`]);
        expect(
          control.exitCode,
          'the sandbox user can read a mode 000 file, so this backend runs as root',
        ).not.toBe(0);
        await expectError(
          sandbox,
          'PERMISSION_DENIED',
          () => sandbox.readFile(`${dir}/locked.txt`),
          'readFile',
        );
        await expectError(
          sandbox,
          'PERMISSION_DENIED',
          () => sandbox.writeFile(`${dir}/locked.txt`, 'x'),
          'writeFile',
        );
      },
    },
    {
      id: 'files.read-limit',
      title: 'reading a file over maxBytes is OUTPUT_LIMIT; at the limit it is read',
      async run({ sandbox, dir }) {
        const data = randomBytes(2_000);
        await sandbox.writeFile(`${dir}/f.bin`, data);
        const error = (await expectError(
          sandbox,
          'OUTPUT_LIMIT',
          () => sandbox.readFile(`${dir}/f.bin`, { maxBytes: 1_999 }),
          'readFile',
        )) as OutputLimitError;
        expect(error.limitBytes).toBe(1_999);
        expectBytes(await sandbox.readFile(`${dir}/f.bin`, { maxBytes: 2_000 }), data);
      },
    },
    {
      id: 'files.write-mode',
      title: 'writeFile sets the requested mode (default 0644), and an executable can run',
      async run({ sandbox, dir }) {
        await sandbox.writeFile(`${dir}/run.sh`, '#!/bin/sh\necho "ran with $1"\n', { mode: 0o755 });
        await sandbox.writeFile(`${dir}/private.txt`, 'p', { mode: 0o600 });
        await sandbox.writeFile(`${dir}/plain.txt`, 'p');
        const modes = await output(sandbox, [
          'sh',
          '-c',
          'cd "$1" && stat -c %a run.sh private.txt plain.txt',
          'sh',
          dir,
        ]);
        expect(modes.split('\n').slice(0, 3)).toEqual(['755', '600', '644']);
        expect(await output(sandbox, ['./run.sh', 'arg'], { cwd: dir })).toBe('ran with arg\n');
      },
    },
    {
      id: 'files.stream-write',
      title: 'writeFile streams an async iterable of chunks in order',
      async run({ sandbox, dir }) {
        const parts = Array.from({ length: 40 }, (_, i) => randomBytes(i === 20 ? 2 * MiB : 1 + i * 4_099));
        async function* chunks() {
          for (const part of parts) {
            await new Promise((resolve) => setImmediate(resolve));
            yield part;
          }
        }
        await sandbox.writeFile(`${dir}/streamed.bin`, chunks());
        const expected = concatBytes(parts);
        expect(await sandboxSha256(sandbox, `${dir}/streamed.bin`)).toBe(sha256(expected));
        expectBytes(await sandbox.readFile(`${dir}/streamed.bin`), expected);
      },
    },
    {
      id: 'files.chunk-types',
      title:
        'writeFile takes string chunks as UTF-8; data that is not bytes is INVALID_ARGUMENT (up front: nothing written)',
      async run({ sandbox, dir }) {
        await sandbox.writeFile(`${dir}/text.txt`, [
          'h\u00e9',
          new Uint8Array([0x21]),
        ] as unknown as Iterable<Uint8Array> as never);
        expect(await sandbox.readTextFile(`${dir}/text.txt`)).toBe('h\u00e9!');
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.writeFile(`${dir}/n.txt`, 42 as never),
          'writeFile',
        );
        await expectError(sandbox, 'NOT_FOUND', () => sandbox.readFile(`${dir}/n.txt`), 'readFile');
        // A stream's bad chunk is found as it arrives.
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.writeFile(`${dir}/m.txt`, [new Uint8Array([1]), 7] as never),
          'writeFile',
        );
      },
    },
    {
      id: 'files.declared-size',
      title:
        'writeFile with a declared size streams exactly that many bytes; a longer or shorter stream is INVALID_ARGUMENT',
      timeoutMs: 60_000,
      async run({ sandbox, dir }) {
        const parts = [randomBytes(MiB + 1), randomBytes(2 * MiB), randomBytes(5)];
        async function* chunks(list: Uint8Array[]) {
          for (const part of list) yield part;
        }
        const size = parts.reduce((n, p) => n + p.length, 0);
        await sandbox.writeFile(`${dir}/sized.bin`, chunks(parts), { size });
        expect(await sandboxSha256(sandbox, `${dir}/sized.bin`)).toBe(sha256(concatBytes(parts)));
        await sandbox.writeFile(`${dir}/small.txt`, 'twelve bytes', { size: 12 });
        expect(await sandbox.readTextFile(`${dir}/small.txt`)).toBe('twelve bytes');
        await sandbox.writeFile(`${dir}/none.txt`, chunks([]), { size: 0 });
        expect((await sandbox.readFile(`${dir}/none.txt`)).length).toBe(0);
        for (const [what, declared] of [
          ['longer', size - 1],
          ['shorter', size + 1],
          ['shorter, small', 100],
        ] as const) {
          const error = await expectError(
            sandbox,
            'INVALID_ARGUMENT',
            () =>
              sandbox.writeFile(
                `${dir}/wrong.bin`,
                chunks(parts.slice(0, what === 'shorter, small' ? 0 : 3)),
                { size: declared },
              ),
            'writeFile',
          );
          expect(error.message, what).toMatch(/declared size/);
        }
        for (const bad of [-1, 1.5, Number.NaN, '12']) {
          await expectError(
            sandbox,
            'INVALID_ARGUMENT',
            () => sandbox.writeFile(`${dir}/bad.txt`, 'x', { size: bad as number }),
            'writeFile',
          );
        }
        await expectError(sandbox, 'NOT_FOUND', () => sandbox.readFile(`${dir}/bad.txt`), 'readFile');
        // A failed write may leave its own file cut short, but nothing else behind (no temporary file).
        const names = (await output(sandbox, ['ls', '-A', dir])).split('\n').filter(Boolean);
        expect(names.filter((n) => n !== 'wrong.bin').sort()).toEqual(['none.txt', 'sized.bin', 'small.txt']);
      },
    },
  ],
});
