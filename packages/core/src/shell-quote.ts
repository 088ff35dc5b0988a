/**
 * The one way shell text is quoted in agentbox. A word becomes `'…'`, each `'` written as
 * `'\''`: inside single quotes a POSIX shell treats every byte but `'` literally, so any byte
 * string without NUL survives. That holds only when the script is encoded the way the word
 * was: text (UTF-8, where byte 0x27 only ever comes from `'` itself) or binary strings (one
 * char per byte, every char ≤ 0xFF, encoded latin1). Mixing them is the classic bug (U+0127
 * encoded as latin1 is a bare `'`), so each form has its own entry point that refuses what its
 * encoding cannot carry, and {@link binaryScript} refuses any char a binary script cannot hold.
 */
import { InvalidArgumentError } from './errors.js';

/** Half of a surrogate pair on its own: not text, UTF-8 cannot carry it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Quote a word of text for a script sent as UTF-8. Refuses NUL. (A lone surrogate is written as
 * U+FFFD by every UTF-8 encoder: three bytes above 0x7F, still inside the quotes.)
 */
export function shellQuote(word: string): string {
  if (typeof word !== 'string' || word.includes('\0'))
    throw new InvalidArgumentError('a shell word must be text without NUL', { subject: String(word) });
  return wrap(word);
}

/** Quote a binary string (one char per byte) for a script built with {@link binaryScript}. */
export function shellQuoteBinary(word: string): string {
  if (typeof word !== 'string' || !/^[\x01-\xff]*$/.test(word))
    throw new InvalidArgumentError('a binary shell word must hold bytes 1-255 only', {
      subject: JSON.stringify(word),
    });
  return wrap(word);
}

/** Quote raw bytes; the result is the bytes of the quoted word. */
export function shellQuoteBytes(word: Uint8Array): Uint8Array {
  return Buffer.from(shellQuoteBinary(Buffer.from(word).toString('latin1')), 'latin1');
}

/** Quote each word and join them with spaces (text form). */
export function shellQuoteAll(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}

/** A binary-string script as its bytes; a char above 0xFF is a bug, never truncated silently. */
export function binaryScript(text: string): Buffer {
  if (!/^[\x00-\xff]*$/.test(text))
    throw new InvalidArgumentError('a binary script may only hold chars 0-255', {});
  return Buffer.from(text, 'latin1');
}

/** UTF-8 text as the binary string of its bytes (refuses lone surrogates). */
export function toBinary(text: string): string {
  if (LONE_SURROGATE.test(text)) throw new InvalidArgumentError('text with a lone surrogate', {});
  return Buffer.from(text, 'utf8').toString('latin1');
}

function wrap(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
