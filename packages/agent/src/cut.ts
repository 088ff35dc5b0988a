/** Long tool results are cut for the model in the middle, keeping the head and the tail, never silently. */

/** Default characters of one tool result that go back to the model. */
export const DEFAULT_MAX_RESULT_CHARS = 24_000;

/**
 * `text` if it fits in `maxChars`, else its head and its tail with a note in between saying how
 * much was dropped. The tail gets a little less than the head: errors tend to sit at the end, but
 * what a command was doing shows at the start.
 */
export function cutMiddle(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const budget = Math.max(0, maxChars - 120); // room for the note
  const headChars = Math.ceil(budget * 0.55);
  const tailChars = budget - headChars;
  const head = text.slice(0, headChars);
  const tail = tailChars > 0 ? text.slice(text.length - tailChars) : '';
  const dropped = text.slice(headChars, text.length - tailChars);
  const lines = dropped.split('\n').length - 1;
  return `${head}\n[… ${dropped.length} characters (${lines} lines) cut from the middle of ${text.length}; the head and the tail are shown …]\n${tail}`;
}
