/**
 * The one quoting function, proved against real shells: random byte strings (invalid UTF-8,
 * newlines, quotes, `$()`, the bytes of U+0127 …) go through `dash` and `busybox sh` and come
 * back byte-identical.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { binaryScript, shellQuote, shellQuoteBinary, shellQuoteBytes } from '../src/shell-quote.js';

const SHELLS: [string, string[]][] = [
  ['/bin/dash', ['/bin/dash', '-s']],
  ['/bin/busybox', ['/bin/busybox', 'sh', '-s']],
];

/** Run a script (bytes on stdin) and return stdout. */
function run(shell: string[], script: Uint8Array): Buffer {
  const r = spawnSync(shell[0]!, shell.slice(1), { input: script, env: { PATH: '/usr/bin:/bin' } });
  if (r.status !== 0) throw new Error(`${shell.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Bytes 1-255, biased towards the ones shells care about. */
const hostileByte = fc.oneof(
  fc.integer({ min: 1, max: 255 }),
  fc.constantFrom(...Buffer.from('\'"\\$`()\n\r\t *?[]{};&|<>~#!%=-').values(), 0x27, 0xc4, 0xa7, 0xff, 0x80),
);
const byteWord = fc.array(hostileByte, { maxLength: 40 }).map((b) => Uint8Array.from(b));
const textWord = fc
  .oneof(
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.string({
      unit: fc.constantFrom('ħ', "'", '$(', ')', '\n', '`', '\\', 'é', '日', '😀', '\uffff'),
      maxLength: 20,
    }),
  )
  .filter((s) => !s.includes('\0'));

for (const [name, shell] of SHELLS) {
  const present = existsSync(name);
  describe.skipIf(!present)(`shellQuote through ${name}${present ? '' : ' (not installed here)'}`, () => {
    it('any byte string without NUL comes back byte-identical (binary script)', () => {
      fc.assert(
        fc.property(fc.array(byteWord, { minLength: 1, maxLength: 12 }), (words) => {
          const bins = words.map((w) => Buffer.from(w).toString('latin1'));
          const script = bins.map((w) => `printf '%s\\0' ${shellQuoteBinary(w)}`).join('\n');
          const out = run(shell, binaryScript(`${script}\n`));
          expect(out).toEqual(Buffer.concat(words.flatMap((w) => [Buffer.from(w), Buffer.alloc(1)])));
        }),
        { numRuns: 60 },
      );
    });

    it('any text comes back as its UTF-8 bytes (text script)', () => {
      fc.assert(
        fc.property(fc.array(textWord, { minLength: 1, maxLength: 12 }), (words) => {
          const script = words.map((w) => `printf '%s\\0' ${shellQuote(w)}`).join('\n');
          const out = run(shell, Buffer.from(`${script}\n`, 'utf8'));
          expect(out).toEqual(Buffer.concat(words.flatMap((w) => [Buffer.from(w, 'utf8'), Buffer.alloc(1)])));
        }),
        { numRuns: 60 },
      );
    });
  });
}

describe('shellQuote refuses what its encoding cannot carry', () => {
  it('U+0127 is text, not a quote byte', () => {
    expect(() => shellQuoteBinary('\u0127; touch pwned')).toThrow(/bytes 1-255/);
    expect(() => binaryScript(`echo ${shellQuote('\u0127')}`)).toThrow(/0-255/);
    // As text it is two bytes above 0x7F, both inside the quotes.
    expect(Buffer.from(shellQuote('\u0127'), 'utf8')).toEqual(Buffer.from([0x27, 0xc4, 0xa7, 0x27]));
  });

  it('NUL is refused with a typed error', () => {
    expect(() => shellQuote('a\0b')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => shellQuoteBinary('a\0b')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => shellQuoteBytes(Uint8Array.of(0x61, 0))).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('the bytes variant quotes raw bytes', () => {
    expect(Buffer.from(shellQuoteBytes(Uint8Array.of(0x27, 0xff)))).toEqual(
      Buffer.from("''\\''\xff'", 'latin1'),
    );
  });
});
