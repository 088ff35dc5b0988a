/**
 * A hand-written client of the chat-completions protocol (`fetch`, no SDK), kept for callers that
 * want no dependency; `openaiModel` is the same protocol through the official SDK.
 */
import {
  AbortedError,
  type AgentboxError,
  AuthenticationError,
  InvalidArgumentError,
  ModelUnavailableError,
  NotFoundError,
  UnsupportedError,
} from '@agentbox/core';
import { type ErrorContext, parseArgument } from '@agentbox/core/backend';
import { z } from 'zod';
import type { Model, ToolCall } from '../model-types.js';
import { parseToolArguments, toChatWire } from './chat-wire.js';
import { UNREACHABLE_REASONS } from './request-error.js';

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

const ChatCompletionsOptionsSchema = z.strictObject({
  baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
  model: z.string().min(1),
  apiKey: z.string().optional(),
  temperature: z.number().optional(),
  requestTimeoutMs: z.number().positive().optional(),
  fetch: z.custom<typeof fetch>((value) => typeof value === 'function', 'must be a function').optional(),
});

const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;

/** A model behind the `POST {baseUrl}/chat/completions` protocol with function tools. */
export function chatCompletionsModel(options: ChatCompletionsOptions): Model {
  const context: ErrorContext = { backend: 'model', operation: 'complete' };
  parseArgument(ChatCompletionsOptionsSchema, options, { what: 'chat-completions options', context });
  const doFetch = options.fetch ?? fetch;
  const url = `${options.baseUrl.replace(/\/$/, '')}/chat/completions`;
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return {
    async complete({ messages, tools, signal }) {
      const timeout = AbortSignal.timeout(timeoutMs);
      const failed = (error: unknown) => requestFailure(error, { url, timeoutMs, signal, timeout, context });
      let response: Response;
      let text: string;
      try {
        response = await doFetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
          },
          body: JSON.stringify({
            model: options.model,
            temperature: options.temperature,
            messages: messages.map(toChatWire),
            tools: tools.map((t) => ({ type: 'function', function: t })),
          }),
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        text = await response.text();
      } catch (error) {
        throw failed(error);
      }
      if (!response.ok) throw statusFailure(response.status, text, url, options.model, context);
      const message = parseResponse(text)?.choices?.[0]?.message;
      if (!message)
        throw new UnsupportedError(
          `${url} did not answer in the chat-completions format (no choices[0].message): ` +
            `check that the URL is an OpenAI-compatible API; it began ${JSON.stringify(text.slice(0, 200))}`,
          context,
        );
      return {
        content: message.content ?? '',
        toolCalls: (message.tool_calls ?? []).map(
          (c): ToolCall => ({
            id: c.id,
            name: c.function.name,
            arguments: parseToolArguments(c.function.arguments),
          }),
        ),
      };
    },
  };
}

function parseResponse(text: string): WireResponse | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as WireResponse) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why a request failed, from the deepest cause that says (fetch hides `ECONNREFUSED` two causes
 * down, under a bare "fetch failed"): its Node error code, if any, and its message.
 */
function rootCause(error: unknown): { code: string | undefined; message: string } {
  let code: string | undefined;
  let message = error instanceof Error ? error.message : String(error);
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    const own = (e as { code?: unknown }).code;
    if (typeof own === 'string') code = own;
    if (e instanceof Error && e.message) message = e.message;
    // Several addresses tried (IPv6 and IPv4 for localhost): each failed the same way.
    e = e instanceof AggregateError && e.errors.length ? e.errors[0] : (e as { cause?: unknown }).cause;
  }
  return { code, message };
}

/** A request that got no answer, as a typed error naming the URL, the cause and what to do. */
function requestFailure(
  error: unknown,
  at: {
    url: string;
    timeoutMs: number;
    signal: AbortSignal | undefined;
    timeout: AbortSignal;
    context: ErrorContext;
  },
): AgentboxError {
  const { url, context } = at;
  if (at.signal?.aborted)
    return new AbortedError('the model request was aborted', {
      ...context,
      cause: at.signal.reason ?? error,
    });
  if (at.timeout.aborted)
    return new ModelUnavailableError(
      `the model endpoint ${url} gave no answer within ${at.timeoutMs} ms: ` +
        'check that the model server is not overloaded, or raise requestTimeoutMs',
      url,
      { ...context, cause: error },
    );
  const root = rootCause(error);
  const reason = root.code
    ? `${UNREACHABLE_REASONS[root.code] ?? root.message} (${root.code})`
    : root.message;
  return new ModelUnavailableError(
    `cannot reach the model endpoint ${url}: ${reason}. ` +
      'Check that the model server is running and that the base URL (--model-url) points at it, ' +
      'e.g. http://127.0.0.1:8000/v1',
    url,
    { ...context, cause: error },
  );
}

/** A status other than 2xx, as the typed error a caller can act on. */
function statusFailure(
  status: number,
  body: string,
  url: string,
  model: string,
  context: ErrorContext,
): AgentboxError {
  const said = body.trim() ? `: ${body.trim().slice(0, 500)}` : '';
  if (status === 401 || status === 403)
    return new AuthenticationError(
      `the model endpoint ${url} refused the credentials (${status})${said}. ` +
        'Check the API key (the CLI and the runner read it from MODEL_API_KEY)',
      context,
    );
  if (status === 404)
    return new NotFoundError(
      `the model endpoint ${url} answered 404${said}. Check that the base URL ends where the API's paths ` +
        `start (often /v1) and that the server serves the model "${model}"`,
      { ...context, subject: url },
    );
  if (status === 408 || status === 429 || status >= 500)
    return new ModelUnavailableError(
      `the model endpoint ${url} answered ${status}${said}. Try again later`,
      url,
      context,
    );
  return new InvalidArgumentError(`the model endpoint ${url} refused the request (${status})${said}`, {
    ...context,
    issues: [`request: ${status}${said}`],
  });
}

interface WireResponse {
  choices?: {
    message?: {
      content?: string | null;
      tool_calls?: { id: string; function: { name: string; arguments: string } }[];
    };
  }[];
}
