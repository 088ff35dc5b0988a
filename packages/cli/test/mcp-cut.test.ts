/** How `agentbox mcp` marks a cut stream: head and tail around a note, never a broken character. */
import { describe, expect, it } from 'vitest';
import { cutText } from '../src/mcp/cut.js';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('cutText', () => {
  it('returns an uncut stream as it is', () => {
    expect(cutText(bytes('héllo'), 6, 10, false)).toEqual({
      text: 'héllo',
      truncated: false,
      totalBytes: 6,
      droppedBytes: 0,
    });
  });

  it('marks where the middle was dropped and how much of it', () => {
    // A cap of 6 kept "abc" (head) and "xyz" (tail) of a 26-byte stream.
    const cut = cutText(bytes('abcxyz'), 26, 6, true);
    expect(cut.text).toBe(
      'abc\n[… 20 bytes cut here: 26 in all, the first 3 and the last 3 are shown …]\nxyz',
    );
    expect(cut.droppedBytes).toBe(20);
  });

  it('moves the seam off a character split by the cut, on both sides', () => {
    // Head "a😀" cut after 3 of the emoji's 4 bytes; tail starts with the last 2 bytes of "é".
    const head = bytes('a😀').subarray(0, 4);
    const tail = bytes('éz').subarray(1);
    const kept = new Uint8Array([...head, ...tail]);
    const cut = cutText(kept, 100, 8, true);
    expect(cut.text).toBe('a\n[… 98 bytes cut here: 100 in all, the first 1 and the last 1 are shown …]\nz');
    expect(cut.text).not.toContain('\uFFFD');
  });
});
