/** The options both models on an official SDK take (openai.ts, anthropic.ts). */
import { z } from 'zod';

export interface SdkModelOptions {
  model: string;
  apiKey: string;
  /**
   * Another endpoint speaking the same API: a proxy, a local stand-in, or for OpenAI any
   * compatible server (vLLM, llama.cpp, Ollama), e.g. `http://127.0.0.1:8000/v1`.
   */
  baseUrl?: string;
  temperature?: number;
  /** Output tokens per turn when the budget does not ask for fewer (default 4096; Anthropic requires one). */
  maxOutputTokens?: number;
  /** Transport timeout of one request (default 300 000 ms). */
  requestTimeoutMs?: number;
}

export const SdkModelOptionsSchema = z.strictObject({
  model: z.string().min(1),
  apiKey: z.string().min(1),
  baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  temperature: z.number().optional(),
  maxOutputTokens: z.number().int().positive().optional(),
  requestTimeoutMs: z.number().positive().optional(),
});

export const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;
