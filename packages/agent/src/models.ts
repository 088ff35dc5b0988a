/** Model adapters: an OpenAI-compatible chat-completions endpoint, and a script for offline runs. */
import { AgentboxError, AuthenticationError, InvalidArgumentError } from '@agentbox/core';
import type { Message, Model, ModelTurn, ToolCall } from './loop.js';

export interface ChatCompletionsOptions {
  /** e.g. `http://127.0.0.1:8000/v1` (vLLM, llama.cpp, Ollama and hosted APIs speak this protocol). */
  baseUrl: string;
  model: string;
  apiKey?: string;
  temperature?: number;
  /** Transport timeout for one request, apart from any command timeout. */
  requestTimeoutMs?: number;
  fetch?: typeof fetch;
}

/** A model behind the `POST {baseUrl}/chat/completions` protocol with function tools. */
export function chatCompletionsModel(options: ChatCompletionsOptions): Model {
  const doFetch = options.fetch ?? fetch;
  return {
    async complete({ messages, tools, signal }) {
      const timeout = AbortSignal.timeout(options.requestTimeoutMs ?? 300_000);
      const response = await doFetch(`${options.baseUrl.replace(/\/$/, '')}/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
        },
        body: JSON.stringify({
          model: options.model,
          temperature: options.temperature,
          messages: messages.map(toWire),
          tools: tools.map((t) => ({ type: 'function', function: t })),
        }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      const context = { backend: 'model', operation: 'complete' };
      if (response.status === 401 || response.status === 403)
        throw new AuthenticationError(`model endpoint refused the credentials (${response.status})`, context);
      if (!response.ok)
        throw new AgentboxError(
          `model endpoint answered ${response.status}: ${(await response.text()).slice(0, 500)}`,
          context,
        );
      const body = (await response.json()) as WireResponse;
      const message = body.choices?.[0]?.message;
      if (!message) throw new InvalidArgumentError('model response has no choices[0].message', context);
      return {
        content: message.content ?? '',
        toolCalls: (message.tool_calls ?? []).map(
          (c): ToolCall => ({
            id: c.id,
            name: c.function.name,
            arguments: parseArguments(c.function.arguments),
          }),
        ),
      };
    },
  };
}

interface WireResponse {
  choices?: {
    message?: {
      content?: string | null;
      tool_calls?: { id: string; function: { name: string; arguments: string } }[];
    };
  }[];
}

function toWire(message: Message): Record<string, unknown> {
  switch (message.role) {
    case 'assistant':
      return {
        role: 'assistant',
        content: message.content,
        ...(message.toolCalls.length
          ? {
              tool_calls: message.toolCalls.map((c) => ({
                id: c.id,
                type: 'function',
                function: { name: c.name, arguments: JSON.stringify(c.arguments) },
              })),
            }
          : {}),
      };
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
    default:
      return { role: message.role, content: message.content };
  }
}

/** Malformed JSON from the model is passed on as a string, so the tool reports invalid arguments to it. */
function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * A model that plays back fixed turns: for offline demos and tests. A turn may be a function of the
 * conversation so far (to react to a tool result).
 */
export function scriptedModel(
  turns: readonly (ModelTurn | ((messages: readonly Message[]) => ModelTurn))[],
): Model {
  let next = 0;
  return {
    async complete({ messages }) {
      const turn = turns[next++];
      if (!turn) return { content: 'done', toolCalls: [] };
      return typeof turn === 'function' ? turn(messages) : turn;
    },
  };
}
