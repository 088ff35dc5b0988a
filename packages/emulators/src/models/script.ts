/** What a fake model server answers, turn by turn: replies, tool calls, and failures on demand. */

export interface FakeToolCall {
  name: string;
  arguments: unknown;
  /** Made up when not given. */
  id?: string;
}

/** One answer of the fake server. */
export type FakeReply =
  /** A model turn: text and tool calls; usage is estimated from the sizes when not given. */
  | { text?: string; toolCalls?: FakeToolCall[]; usage?: { inputTokens: number; outputTokens: number } }
  /** An HTTP error in the provider's format, e.g. 429 with `retryAfter: 1` (seconds) or 500. */
  | { status: number; retryAfter?: number | string; retryAfterMs?: number; message?: string }
  /** The connection is dropped without an answer. */
  | { hangUp: true }
  /** No answer for this long, then the reply (for request timeouts). */
  | { stallMs: number; then: FakeReply };

/** A request as the server saw it, for assertions. */
export interface FakeRequest {
  /** Milliseconds since the epoch when it arrived. */
  at: number;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** A reply, or a function of the request that returns one (to react to a tool result). */
export type FakeStep = FakeReply | ((request: FakeRequest) => FakeReply);

/** Plays the steps in order; after the last, every request gets `after` (default: a final answer "done"). */
export class FakeScript {
  readonly #steps: FakeStep[];
  readonly #after: FakeReply;
  #next = 0;
  constructor(steps: readonly FakeStep[], after: FakeReply = { text: 'done' }) {
    this.#steps = [...steps];
    this.#after = after;
  }
  /** Adds steps at the end, e.g. between two runs against the same server. */
  push(...steps: FakeStep[]): void {
    this.#steps.push(...steps);
  }
  next(request: FakeRequest): FakeReply {
    const step = this.#steps[this.#next];
    if (step === undefined) return this.#after;
    this.#next++;
    return typeof step === 'function' ? step(request) : step;
  }
}

/** Tokens as a fake count: about four characters each, at least one. */
export function estimateTokens(value: unknown): number {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? '');
  return Math.max(1, Math.ceil(text.length / 4));
}
