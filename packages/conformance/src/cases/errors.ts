/** Invalid arguments are refused with INVALID_ARGUMENT before anything runs; every error names backend and operation. */
import { expect } from 'vitest';
import { defineGroup } from '../case.js';
import { expectError } from '../helpers.js';

export const errorCases = defineGroup({
  name: 'errors',
  cases: [
    {
      id: 'errors.empty-argv',
      title: 'an empty argv (or an empty program name) is INVALID_ARGUMENT',
      async run({ sandbox }) {
        await expectError(sandbox, 'INVALID_ARGUMENT', () => sandbox.exec([]), 'exec');
        await expectError(sandbox, 'INVALID_ARGUMENT', () => sandbox.exec(['']), 'exec');
        await expectError(sandbox, 'INVALID_ARGUMENT', () => sandbox.spawn([]).wait(), 'spawn');
      },
    },
    {
      id: 'errors.nul-bytes',
      title: 'a NUL byte in a path, an argument or a cwd is INVALID_ARGUMENT',
      async run({ sandbox, dir }) {
        await expectError(sandbox, 'INVALID_ARGUMENT', () => sandbox.readFile(`${dir}/a\0b`), 'readFile');
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.writeFile(`${dir}/a\0b`, 'x'),
          'writeFile',
        );
        await expectError(sandbox, 'INVALID_ARGUMENT', () => sandbox.exec(['echo', 'a\0b']), 'exec');
        await expectError(sandbox, 'INVALID_ARGUMENT', () => sandbox.exec('echo a\0b'), 'exec');
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.exec(['true'], { cwd: `${dir}\0x` }),
          'exec',
        );
        const listing = await sandbox.exec(['ls', '-A', dir]);
        expect(listing.stdout).toBe('');
      },
    },
    {
      id: 'errors.bad-numbers',
      title: 'a negative timeout, output cap or read limit is INVALID_ARGUMENT',
      async run({ sandbox, dir }) {
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.exec(['true'], { timeoutMs: -1 }),
          'exec',
        );
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.exec(['true'], { timeoutMs: Number.NaN }),
          'exec',
        );
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.exec(['true'], { maxOutputBytes: -1 }),
          'exec',
        );
        await sandbox.writeFile(`${dir}/f.txt`, 'x');
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.readFile(`${dir}/f.txt`, { maxBytes: -1 }),
          'readFile',
        );
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.writeFile(`${dir}/g.txt`, 'x', { mode: -1 }),
          'writeFile',
        );
      },
    },
    {
      id: 'errors.bad-env',
      title: 'an invalid environment variable name or a NUL in a value is INVALID_ARGUMENT',
      async run({ sandbox }) {
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.exec(['true'], { env: { 'A=B': 'x' } }),
          'exec',
        );
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.exec(['true'], { env: { '': 'x' } }),
          'exec',
        );
        await expectError(
          sandbox,
          'INVALID_ARGUMENT',
          () => sandbox.exec(['true'], { env: { OK: 'a\0b' } }),
          'exec',
        );
      },
    },
    {
      id: 'errors.context',
      title: 'typed errors name the backend, the operation and the sandbox',
      async run({ sandbox, dir }) {
        const errors = [
          await expectError(sandbox, 'NOT_FOUND', () => sandbox.readFile(`${dir}/missing`), 'readFile'),
          await expectError(
            sandbox,
            'NOT_FOUND',
            () => sandbox.exec(['true'], { cwd: `${dir}/missing` }),
            'exec',
          ),
          await expectError(sandbox, 'INVALID_ARGUMENT', () => sandbox.writeFile('', 'x'), 'writeFile'),
        ];
        for (const error of errors) {
          expect(error.sandboxId).toBe(sandbox.id);
          expect(typeof error.status).toBe('number');
          expect(typeof error.retryable).toBe('boolean');
          expect(error.message.length).toBeGreaterThan(0);
        }
      },
    },
  ],
});
