import { describe, expect, it } from 'vitest';
import { decodeUtf8Stream, OutputBuffer } from '../src/output.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('OutputBuffer', () => {
  it('keeps everything under the cap', () => {
    const buf = new OutputBuffer(100);
    buf.push(bytes('hello '));
    buf.push(bytes('world'));
    expect(text(buf.bytes())).toBe('hello world');
    expect(buf.truncated).toBe(false);
    expect(buf.totalBytes).toBe(11);
  });

  it('keeps the head and the tail and drops the middle', () => {
    const buf = new OutputBuffer(10);
    for (const c of 'abcdefghijklmnopqrstuvwxyz') buf.push(bytes(c));
    expect(text(buf.bytes())).toBe('abcdevwxyz');
    expect(buf.truncated).toBe(true);
    expect(buf.totalBytes).toBe(26);
  });

  it('handles one chunk larger than the cap', () => {
    const buf = new OutputBuffer(6);
    buf.push(bytes('0123456789'));
    expect(text(buf.bytes())).toBe('012789');
    expect(buf.truncated).toBe(true);
  });

  it('bounds memory whatever is pushed', () => {
    const buf = new OutputBuffer(1024);
    const chunk = new Uint8Array(64 * 1024);
    for (let i = 0; i < 1000; i++) buf.push(chunk);
    expect(buf.bytes().length).toBe(1024);
    expect(buf.totalBytes).toBe(64 * 1024 * 1000);
  });
});

describe('decodeUtf8Stream', () => {
  it('keeps a character split across chunks whole', async () => {
    const euro = bytes('€'); // 3 bytes
    async function* chunks() {
      yield euro.subarray(0, 1);
      yield euro.subarray(1, 2);
      yield Uint8Array.of(...euro.subarray(2), ...bytes('!'));
    }
    let out = '';
    for await (const s of decodeUtf8Stream(chunks())) out += s;
    expect(out).toBe('€!');
  });
});
