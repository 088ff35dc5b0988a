/**
 * Output a client reads: a stream the sandbox capped keeps its head and its tail, and the text
 * says where the middle was dropped and how much of it, so nothing is cut silently.
 */

/** One stream as the client gets it: text (UTF-8, a cut marked in place) and whether it was cut. */
export interface CutText {
  text: string;
  truncated: boolean;
  /** Bytes the command wrote to the stream in all. */
  totalBytes: number;
  /** Bytes left out of `text` (0 when nothing was cut). */
  droppedBytes: number;
}

const decoder = new TextDecoder('utf-8');

/**
 * `kept` is what an exec capped at `capBytes` returned for a stream of `totalBytes`: when cut, its
 * first ceil(cap/2) bytes are the head (the sandbox fills the head first) and the rest the tail.
 * The seam moves to character boundaries, so neither side ends in a broken character.
 */
export function cutText(kept: Uint8Array, totalBytes: number, capBytes: number, truncated: boolean): CutText {
  if (!truncated) return { text: decoder.decode(kept), truncated: false, totalBytes, droppedBytes: 0 };
  const seam = Math.min(Math.ceil(capBytes / 2), kept.length);
  const head = kept.subarray(0, headEnd(kept, seam));
  const tail = kept.subarray(tailStart(kept, seam));
  const dropped = totalBytes - head.length - tail.length;
  const note = `\n[… ${dropped} bytes cut here: ${totalBytes} in all, the first ${head.length} and the last ${tail.length} are shown …]\n`;
  return {
    text: `${decoder.decode(head)}${note}${decoder.decode(tail)}`,
    truncated: true,
    totalBytes,
    droppedBytes: dropped,
  };
}

const isContinuation = (byte: number | undefined) => byte !== undefined && (byte & 0xc0) === 0x80;

/** `end`, or the start of a character that `end` would split. */
function headEnd(bytes: Uint8Array, end: number): number {
  let start = end;
  // Back to the lead byte of the last character (at most 3 continuation bytes).
  while (start > 0 && end - start < 4 && isContinuation(bytes[start - 1])) start--;
  if (start === 0 || isContinuation(bytes[start - 1])) return end;
  const lead = bytes[start - 1]!;
  const length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return end - (start - 1) < length ? start - 1 : end;
}

/** `start`, moved past continuation bytes of a character the cut began inside. */
function tailStart(bytes: Uint8Array, start: number): number {
  let at = start;
  while (at < bytes.length && at - start < 3 && isContinuation(bytes[at])) at++;
  return at;
}
