/** The OpenAI chat-completions wire format: `POST /v1/chat/completions`, function tools, `tool_calls`. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { estimateTokens } from './script.js';
import type { Wire } from './server.js';

interface WireMessage {
  role?: string;
  content?: unknown;
  tool_calls?: { id?: string; type?: string; function?: { name?: string; arguments?: unknown } }[];
  tool_call_id?: string;
}

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'invalid_request_error',
  404: 'invalid_request_error',
  429: 'rate_limit_exceeded',
};

export const openaiWire: Wire = {
  path: '/v1/chat/completions',
  authorized: (req: IncomingMessage, apiKey: string) => req.headers.authorization === `Bearer ${apiKey}`,
  check(body) {
    if (typeof body.model !== 'string' || !body.model) return 'model: required';
    if (!Array.isArray(body.messages) || body.messages.length === 0)
      return 'messages: must be a non-empty array';
    // Every tool message answers a tool call of an earlier assistant message, each call once.
    const open = new Set<string>();
    for (const [i, m] of (body.messages as WireMessage[]).entries()) {
      if (m.role === 'assistant')
        for (const c of m.tool_calls ?? []) {
          if (
            c.type !== 'function' ||
            typeof c.function?.name !== 'string' ||
            typeof c.function.arguments !== 'string'
          )
            return `messages[${i}].tool_calls: each needs type "function" and a function with name and arguments (a JSON string)`;
          open.add(String(c.id));
        }
      else if (m.role === 'tool') {
        if (!m.tool_call_id || !open.delete(m.tool_call_id))
          return `messages[${i}]: a tool message must answer a tool call of an earlier assistant message (tool_call_id ${m.tool_call_id})`;
        if (typeof m.content !== 'string') return `messages[${i}].content: must be a string`;
      } else if (!['system', 'user', 'developer'].includes(String(m.role)))
        return `messages[${i}].role: unknown role ${m.role}`;
    }
    if (body.tools !== undefined && !Array.isArray(body.tools)) return 'tools: must be an array';
    return undefined;
  },
  reply(reply, body) {
    const toolCalls = (reply.toolCalls ?? []).map((c) => ({
      id: c.id ?? `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`,
      type: 'function',
      function: {
        name: c.name,
        arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments),
      },
    }));
    const usage = reply.usage ?? {
      inputTokens: estimateTokens(body.messages),
      outputTokens: estimateTokens([reply.text ?? '', toolCalls]),
    };
    return {
      id: `chatcmpl-${randomUUID()}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: reply.text ?? null,
            refusal: null,
            ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
          },
          finish_reason: toolCalls.length ? 'tool_calls' : 'stop',
          logprobs: null,
        },
      ],
      usage: {
        prompt_tokens: usage.inputTokens,
        completion_tokens: usage.outputTokens,
        total_tokens: usage.inputTokens + usage.outputTokens,
      },
    };
  },
  error: (status, message) => ({
    error: {
      message,
      type: ERROR_TYPES[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error'),
      code: null,
      param: null,
    },
  }),
};
