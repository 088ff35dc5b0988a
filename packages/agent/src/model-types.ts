/** What the loop and every model adapter agree on: messages, turns, tool calls and notices. */
import type { ToolSpec } from './tools.js';

export interface ToolCall {
  id: string;
  name: string;
  /** Parsed arguments object (adapters decode the model's JSON). */
  arguments: unknown;
}

export type Message =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls: ToolCall[] }
  | { role: 'tool'; toolCallId: string; name: string; content: string };

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}

export interface ModelTurn {
  content: string;
  toolCalls: ToolCall[];
  /** Tokens the provider counted for this turn, when it says (the limits add them up). */
  usage?: TokenUsage;
  /** The model that answered (with a fallback, not always the primary), for prices and logs. */
  model?: string;
}

/** Something the model layer wants on the record: a retry, or a switch to the fallback. */
export type ModelNotice =
  | { type: 'retry'; model: string; attempt: number; delayMs: number; error: string }
  | { type: 'fallback'; from: string; to: string; error: string }
  | { type: 'primary_restored'; model: string };

export interface ModelRequest {
  messages: readonly Message[];
  tools: readonly ToolSpec[];
  signal?: AbortSignal;
  /** The most output tokens this turn may use (what is left of the budget, or the adapter's default). */
  maxOutputTokens?: number;
  /** Where retries and fallbacks are reported, so the loop can log them. */
  notify?: (notice: ModelNotice) => void;
}

/** Anything that answers a conversation with text and tool calls: a remote API, a local model, a script. */
export interface Model {
  /** A name for logs and prices, e.g. `openai:gpt-4o-mini`. */
  readonly name?: string;
  complete(request: ModelRequest): Promise<ModelTurn>;
}
