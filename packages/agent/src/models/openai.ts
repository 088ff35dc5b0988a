/** A model behind the OpenAI chat-completions API, through the official `openai` SDK. */
import type { ErrorContext } from '@agentbox/core/backend';
import { parseArgument } from '@agentbox/core/backend';
import OpenAI from 'openai';
import { z } from 'zod';
import type { Message, Model, ToolCall } from '../model-types.js';
import { modelRequestFailure } from './request-error.js';

export interface OpenAIModelOptions {
  model: string;
  apiKey: string;
  /** Another OpenAI-compatible endpoint (vLLM, llama.cpp, Ollama, a proxy), e.g. `http://127.0.0.1:8000/v1`. */
  baseUrl?: string;
  temperature?: number;
  /** Output tokens per turn when the budget does not ask for fewer (default 4096). */
  maxOutputTokens?: number;
  /** Transport timeout of one request (default 300 000 ms). */
  requestTimeoutMs?: number;
}

const OptionsSchema = z.strictObject({
  model: z.string().min(1),
  apiKey: z.string().min(1),
  baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  temperature: z.number().optional(),
  maxOutputTokens: z.number().int().positive().optional(),
  requestTimeoutMs: z.number().positive().optional(),
});

export function openaiModel(options: OpenAIModelOptions): Model {
  const context: ErrorContext = { backend: 'openai', operation: 'complete' };
  parseArgument(OptionsSchema, options, { what: 'openai model options', context });
  const timeoutMs = options.requestTimeoutMs ?? 300_000;
  // Retries are ours (see failover.ts): the SDK would wait out any retry-after, however long.
  const client = new OpenAI({
    apiKey: options.apiKey,
    ...(options.baseUrl ? { baseURL: options.baseUrl } : {}),
    maxRetries: 0,
    timeout: timeoutMs,
  });
  const url = `${client.baseURL.replace(/\/$/, '')}/chat/completions`;
  const name = `openai:${options.model}`;
  return {
    name,
    async complete({ messages, tools, signal, maxOutputTokens }) {
      let completion: OpenAI.Chat.ChatCompletion;
      try {
        completion = await client.chat.completions.create(
          {
            model: options.model,
            messages: messages.map(toOpenAI),
            ...(tools.length
              ? { tools: tools.map((t) => ({ type: 'function' as const, function: t })) }
              : {}),
            max_completion_tokens: Math.min(maxOutputTokens ?? Infinity, options.maxOutputTokens ?? 4096),
            ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
          },
          signal ? { signal } : {},
        );
      } catch (error) {
        throw modelRequestFailure(error, { url, model: options.model, timeoutMs, signal, context });
      }
      const message = completion.choices[0]?.message;
      const toolCalls: ToolCall[] = [];
      for (const c of message?.tool_calls ?? [])
        if (c.type === 'function')
          toolCalls.push({
            id: c.id,
            name: c.function.name,
            arguments: parseArguments(c.function.arguments),
          });
      return {
        content: message?.content ?? '',
        toolCalls,
        model: name,
        ...(completion.usage
          ? {
              usage: {
                inputTokens: completion.usage.prompt_tokens,
                outputTokens: completion.usage.completion_tokens,
              },
            }
          : {}),
      };
    },
  };
}

function toOpenAI(message: Message): OpenAI.Chat.ChatCompletionMessageParam {
  switch (message.role) {
    case 'assistant':
      return {
        role: 'assistant',
        content: message.content,
        ...(message.toolCalls.length
          ? {
              tool_calls: message.toolCalls.map((c) => ({
                id: c.id,
                type: 'function' as const,
                function: {
                  name: c.name,
                  arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments),
                },
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
