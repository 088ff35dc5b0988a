/**
 * The on-disk form of a manifest or info file: its JSON on one line, then (when the store has
 * a key) `hmac-sha256 <hex>` over exactly those bytes. The JSON is ASCII (non-ASCII escaped),
 * so its bytes do not depend on how the file is read. A store with a key refuses a file whose
 * MAC is missing or wrong; the key is meant to live where the sandbox cannot read it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { CheckpointCorruptError, type ErrorContext } from '../../errors.js';

const MAC_LINE = /^hmac-sha256 ([0-9a-f]{64})$/;

/** JSON with every non-ASCII char escaped: the same bytes whatever encoding reads it. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function mac(key: Uint8Array, body: string): Buffer {
  return createHmac('sha256', key).update(Buffer.from(body, 'latin1')).digest();
}

/** File text for `value`: its ASCII JSON line, and the MAC line when there is a key. */
export function seal(value: unknown, key: Uint8Array | undefined): string {
  return sealJson(asciiJson(value), key);
}

/** File text for a value's {@link asciiJson}, made by the caller (in parts it kept from before, say). */
export function sealJson(body: string, key: Uint8Array | undefined): string {
  return key ? `${body}\nhmac-sha256 ${mac(key, body).toString('hex')}\n` : `${body}\n`;
}

/**
 * The JSON text of a sealed file (read as a binary string), its MAC checked when there is a
 * key. Without a key a MAC line is ignored: nothing to check it with.
 */
export function unseal(
  file: string,
  key: Uint8Array | undefined,
  id: string | undefined,
  context: ErrorContext,
): string {
  const lines = file.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const body = lines[0] ?? '';
  const corrupt = (why: string) =>
    new CheckpointCorruptError(`checkpoint ${id ?? ''} is corrupt: ${why}`.replace('  ', ' '), {
      ...context,
      subject: id,
    });
  if (lines.length > 2 || /[^\x20-\x7e]/.test(body)) throw corrupt('unexpected file format');
  const tag = lines.length === 2 ? MAC_LINE.exec(lines[1]!) : undefined;
  if (lines.length === 2 && !tag) throw corrupt('unexpected file format');
  if (!key) return body;
  if (!tag) throw corrupt('no MAC, and this store requires one');
  if (!timingSafeEqual(Buffer.from(tag[1]!, 'hex'), mac(key, body))) throw corrupt('MAC mismatch');
  return body;
}
