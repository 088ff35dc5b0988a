/** A model behind the OpenAI chat-completions API, through the official `openai` SDK. */
import type { ErrorContext } from '@agentbox/core/backend';
import { parseArgument } from '@agentbox/core/backend';
import OpenAI from 'openai';
import type { Model, ToolCall } from '../model-types.js';
import { parseToolArguments, toChatWire } from './chat-wire.js';
import { modelRequestFailure } from './request-error.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, type SdkModelOptions, SdkModelOptionsSchema } from './sdk-options.js';

export type OpenAIModelOptions = SdkModelOptions;

export function openaiModel(options: OpenAIModelOptions): Model {
  const context: ErrorContext = { backend: 'openai', operation: 'complete' };
  parseArgument(SdkModelOptionsSchema, options, { what: 'openai model options', context });
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
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
            messages: messages.map(toChatWire),
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
            arguments: parseToolArguments(c.function.arguments),
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
