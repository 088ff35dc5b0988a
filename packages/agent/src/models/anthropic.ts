/** A model behind the Anthropic messages API, through the official `@anthropic-ai/sdk`. */

import type { ErrorContext } from '@agentbox/core/backend';
import { parseArgument } from '@agentbox/core/backend';
import Anthropic from '@anthropic-ai/sdk';
import type { Message, Model, ToolCall } from '../model-types.js';
import { modelRequestFailure } from './request-error.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, type SdkModelOptions, SdkModelOptionsSchema } from './sdk-options.js';

export type AnthropicModelOptions = SdkModelOptions;

export function anthropicModel(options: AnthropicModelOptions): Model {
  const context: ErrorContext = { backend: 'anthropic', operation: 'complete' };
  parseArgument(SdkModelOptionsSchema, options, { what: 'anthropic model options', context });
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  // Retries are ours (see failover.ts): the SDK would wait out any retry-after, however long.
  const client = new Anthropic({
    apiKey: options.apiKey,
    ...(options.baseUrl ? { baseURL: options.baseUrl } : {}),
    maxRetries: 0,
    timeout: timeoutMs,
  });
  const url = `${client.baseURL.replace(/\/$/, '')}/v1/messages`;
  const name = `anthropic:${options.model}`;
  return {
    name,
    async complete({ messages, tools, signal, maxOutputTokens }) {
      let reply: Anthropic.Message;
      try {
        reply = await client.messages.create(
          {
            model: options.model,
            max_tokens: Math.min(maxOutputTokens ?? Infinity, options.maxOutputTokens ?? 4096),
            ...systemOf(messages),
            messages: toAnthropic(messages),
            ...(tools.length
              ? {
                  tools: tools.map((t) => ({
                    name: t.name,
                    description: t.description,
                    input_schema: t.parameters as Anthropic.Tool.InputSchema,
                  })),
                }
              : {}),
            ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
          },
          signal ? { signal } : {},
        );
      } catch (error) {
        throw modelRequestFailure(error, { url, model: options.model, timeoutMs, signal, context });
      }
      const text: string[] = [];
      const toolCalls: ToolCall[] = [];
      for (const block of reply.content) {
        if (block.type === 'text') text.push(block.text);
        else if (block.type === 'tool_use')
          toolCalls.push({ id: block.id, name: block.name, arguments: block.input });
      }
      return {
        content: text.join('\n'),
        toolCalls,
        model: name,
        usage: { inputTokens: reply.usage.input_tokens, outputTokens: reply.usage.output_tokens },
      };
    },
  };
}

function systemOf(messages: readonly Message[]): { system?: string } {
  const system = messages.filter((m) => m.role === 'system').map((m) => m.content);
  return system.length ? { system: system.join('\n\n') } : {};
}

/** Tool-use ids must match `[A-Za-z0-9_-]+`; ids from another provider (after a fallback) may not. */
const toolUseId = (id: string) => id.replace(/[^A-Za-z0-9_-]/g, '_') || 'call';

/**
 * The conversation in the messages API's shape: tool calls are `tool_use` blocks of the assistant,
 * and the results that follow them go back together in one user message of `tool_result` blocks.
 */
function toAnthropic(messages: readonly Message[]): Anthropic.MessageParam[] {
  const out: Anthropic.MessageParam[] = [];
  for (const message of messages) {
    if (message.role === 'system') continue;
    if (message.role === 'user') out.push({ role: 'user', content: message.content });
    else if (message.role === 'assistant') {
      const blocks: Anthropic.ContentBlockParam[] = [];
      if (message.content) blocks.push({ type: 'text', text: message.content });
      for (const c of message.toolCalls)
        blocks.push({
          type: 'tool_use',
          id: toolUseId(c.id),
          name: c.name,
          // The API takes an object; a model's malformed arguments travel as their text.
          input:
            c.arguments && typeof c.arguments === 'object' && !Array.isArray(c.arguments)
              ? c.arguments
              : { text: c.arguments },
        });
      out.push({ role: 'assistant', content: blocks.length ? blocks : '' });
    } else if (message.role === 'tool') {
      const result: Anthropic.ToolResultBlockParam = {
        type: 'tool_result',
        tool_use_id: toolUseId(message.toolCallId),
        content: message.content,
      };
      const last = out.at(-1);
      if (last?.role === 'user' && Array.isArray(last.content)) last.content.push(result);
      else out.push({ role: 'user', content: [result] });
    }
  }
  return out;
}
