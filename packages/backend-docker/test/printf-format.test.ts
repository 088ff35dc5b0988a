/**
 * printfFormat: any bytes, given to the shell's printf as a format, come back exactly, in dash
 * (this machine's sh) and in BusyBox (the test image); too long a format is refused.
 */
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { printfFormat } from '../src/files.js';

const IMAGE = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';

describe('printfFormat', () => {
  it('prints any byte string exactly under dash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const format = printfFormat(bytes, 4 * bytes.length)!;
        expect(format).toMatch(/^[\x20-\x7e]*$/);
        const out = execFileSync('dash', ['-c', 'printf "$1"', 'sh', format]);
        expect(Buffer.compare(out, Buffer.from(bytes))).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('prints every byte value, and hostile text, exactly under BusyBox sh', () => {
    const every = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
    const hostile = Buffer.from('-n %s %d %% \\ \\n $(id) `id` \'"\n\0end');
    for (const bytes of [every, hostile, new Uint8Array(0)]) {
      const format = printfFormat(bytes, 4 * bytes.length)!;
      const out = execFileSync('docker', ['run', '--rm', IMAGE, 'sh', '-c', 'printf "$1"', 'sh', format]);
      expect(Buffer.compare(out, Buffer.from(bytes))).toBe(0);
    }
  });

  it('refuses a format longer than its limit', () => {
    expect(printfFormat(new Uint8Array(10), 39)).toBeUndefined();
    expect(printfFormat(new Uint8Array(10), 40)).toBe('\\000'.repeat(10));
    expect(printfFormat(Buffer.from('abc'), 2)).toBeUndefined();
  });
});
