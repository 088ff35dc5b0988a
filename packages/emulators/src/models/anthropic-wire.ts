/** The Anthropic messages wire format: `POST /v1/messages`, `tool_use` and `tool_result` blocks. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { estimateTokens } from './script.js';
import type { Wire } from './server.js';

interface Block {
  type?: string;
  id?: string;
  tool_use_id?: string;
  name?: string;
  input?: unknown;
}
interface WireMessage {
  role?: string;
  content?: string | Block[];
}

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};

export const anthropicWire: Wire = {
  path: '/v1/messages',
  // The key comes as x-api-key, or (newer SDKs) as a bearer token; the version header is required.
  authorized: (req: IncomingMessage, apiKey: string) =>
    (req.headers['x-api-key'] === apiKey || req.headers.authorization === `Bearer ${apiKey}`) &&
    typeof req.headers['anthropic-version'] === 'string',
  check(body) {
    if (typeof body.model !== 'string' || !body.model) return 'model: required';
    if (typeof body.max_tokens !== 'number' || body.max_tokens < 1)
      return 'max_tokens: required, a positive integer';
    const messages = body.messages as WireMessage[] | undefined;
    if (!Array.isArray(messages) || messages.length === 0) return 'messages: must be a non-empty array';
    // Roles alternate from a user message; tool results answer the tool uses of the message before.
    let previousUses = new Set<string>();
    for (const [i, m] of messages.entries()) {
      const expected = i % 2 === 0 ? 'user' : 'assistant';
      if (m.role !== expected)
        return `messages[${i}].role: expected ${expected} (roles alternate, starting with user)`;
      const blocks = typeof m.content === 'string' ? [] : (m.content ?? []);
      if (m.role === 'assistant') {
        previousUses = new Set();
        for (const b of blocks)
          if (b.type === 'tool_use') {
            if (!b.id || !/^[A-Za-z0-9_-]+$/.test(b.id))
              return `messages[${i}]: tool_use.id must match ^[a-zA-Z0-9_-]+$`;
            if (!b.input || typeof b.input !== 'object' || Array.isArray(b.input))
              return `messages[${i}]: tool_use.input must be an object`;
            previousUses.add(b.id);
          }
      } else {
        for (const b of blocks)
          if (b.type === 'tool_result' && (!b.tool_use_id || !previousUses.delete(b.tool_use_id)))
            return `messages[${i}]: tool_result ${b.tool_use_id} answers no tool_use of the previous message`;
        if (previousUses.size)
          return `messages[${i}]: tool_use ids without a tool_result in the next message: ${[...previousUses].join(', ')}`;
      }
    }
    if (body.system !== undefined && typeof body.system !== 'string' && !Array.isArray(body.system))
      return 'system: must be a string or an array of text blocks';
    return undefined;
  },
  reply(reply, body) {
    const content: Record<string, unknown>[] = [];
    if (reply.text) content.push({ type: 'text', text: reply.text });
    for (const c of reply.toolCalls ?? [])
      content.push({
        type: 'tool_use',
        id: c.id ?? `toolu_${randomUUID().replaceAll('-', '').slice(0, 24)}`,
        name: c.name,
        input: c.arguments,
      });
    const usage = reply.usage ?? {
      inputTokens: estimateTokens([body.system ?? '', body.messages]),
      outputTokens: estimateTokens(content),
    };
    return {
      id: `msg_${randomUUID().replaceAll('-', '')}`,
      type: 'message',
      role: 'assistant',
      model: body.model,
      content,
      stop_reason: reply.toolCalls?.length ? 'tool_use' : 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: usage.inputTokens, output_tokens: usage.outputTokens },
    };
  },
  error: (status, message) => ({
    type: 'error',
    error: { type: ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'), message },
  }),
};
