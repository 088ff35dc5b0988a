/**
 * Which model a command line talks to (the example runner, `agentbox agent`), from its flags and
 * the environment: a provider's official SDK (openai, also any OpenAI-compatible server, or
 * anthropic) with an optional fallback, a replay file, or nothing (the caller's own default).
 */
import type { Model } from '../model-types.js';
import { anthropicModel } from './anthropic.js';
import { failoverModel, type RetryPolicy } from './failover.js';
import { openaiModel } from './openai.js';
import { replayModel } from './scripted.js';

export type ModelProvider = 'openai' | 'anthropic';
export const MODEL_PROVIDERS: readonly ModelProvider[] = ['openai', 'anthropic'];

export interface ModelFlags {
  provider?: string | undefined;
  'model-url'?: string | undefined;
  model?: string | undefined;
  'fallback-provider'?: string | undefined;
  'fallback-url'?: string | undefined;
  'fallback-model'?: string | undefined;
  replay?: string | undefined;
}

export interface ChooseModelOptions {
  /** The variable that holds the primary's key, before the provider's own (default MODEL_API_KEY). */
  apiKeyEnv?: string;
  /** Retries before the fallback takes a turn (the failover model's policy). */
  retry?: RetryPolicy;
}

const DEFAULT_MODELS: Record<ModelProvider, string> = {
  openai: 'gpt-4o-mini',
  anthropic: 'claude-haiku-4-5',
};

/** A mistake in the model flags, told to the user as a usage error. */
export class ModelFlagError extends Error {}

function keyFor(
  provider: ModelProvider,
  env: NodeJS.ProcessEnv,
  fallback: boolean,
  apiKeyEnv = 'MODEL_API_KEY',
): string | undefined {
  const own = provider === 'openai' ? env.OPENAI_API_KEY : env.ANTHROPIC_API_KEY;
  return (fallback ? env.FALLBACK_API_KEY : env[apiKeyEnv]) || own || undefined;
}

function providerOf(name: string | undefined, flag: string): ModelProvider | undefined {
  if (name === undefined) return undefined;
  if (!(MODEL_PROVIDERS as readonly string[]).includes(name))
    throw new ModelFlagError(`${flag} must be one of ${MODEL_PROVIDERS.join(', ')}, not "${name}"`);
  return name as ModelProvider;
}

function sdkModel(
  provider: ModelProvider,
  url: string | undefined,
  name: string | undefined,
  apiKey: string,
): Model {
  const options = { apiKey, model: name ?? DEFAULT_MODELS[provider], ...(url ? { baseUrl: url } : {}) };
  return provider === 'openai' ? openaiModel(options) : anthropicModel(options);
}

/**
 * The model to use, or undefined for the built-in script. A URL without a key is a local server
 * that wants none; a provider named without a key or URL is a mistake, said plainly.
 */
export function chooseModel(
  flags: ModelFlags,
  env: NodeJS.ProcessEnv,
  options: ChooseModelOptions = {},
): Model | undefined {
  if (flags.replay) return replayModel(flags.replay);
  const apiKeyEnv = options.apiKeyEnv ?? 'MODEL_API_KEY';
  const retry = options.retry ? { retry: options.retry } : {};
  let provider = providerOf(flags.provider, '--provider');
  provider ??=
    flags['model-url'] || env.OPENAI_API_KEY || env[apiKeyEnv]
      ? 'openai'
      : env.ANTHROPIC_API_KEY
        ? 'anthropic'
        : undefined;
  if (provider === undefined) return undefined;
  const key = keyFor(provider, env, false, apiKeyEnv) ?? (flags['model-url'] ? 'no-key' : undefined);
  if (key === undefined)
    throw new ModelFlagError(
      `--provider ${provider} needs a key (${provider === 'openai' ? 'OPENAI_API_KEY' : 'ANTHROPIC_API_KEY'} or ${apiKeyEnv}) or a --model-url`,
    );
  const primary = sdkModel(provider, flags['model-url'], flags.model, key);
  const fallbackProvider = providerOf(flags['fallback-provider'], '--fallback-provider');
  if (fallbackProvider === undefined) {
    if (flags['fallback-url'] || flags['fallback-model'])
      throw new ModelFlagError('--fallback-url and --fallback-model need --fallback-provider');
    return failoverModel({ primary, ...retry });
  }
  const fallbackKey = keyFor(fallbackProvider, env, true) ?? (flags['fallback-url'] ? 'no-key' : undefined);
  if (fallbackKey === undefined)
    throw new ModelFlagError(
      `--fallback-provider ${fallbackProvider} needs a key (FALLBACK_API_KEY or the provider's) or a --fallback-url`,
    );
  return failoverModel({
    ...retry,
    primary,
    fallback: sdkModel(fallbackProvider, flags['fallback-url'], flags['fallback-model'], fallbackKey),
  });
}
