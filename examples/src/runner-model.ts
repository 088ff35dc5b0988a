/**
 * Which model the example runner talks to, from its flags and the environment: a provider's SDK
 * (openai, also any OpenAI-compatible server, or anthropic) with an optional fallback, a replay
 * file, or — with no key and no URL — the built-in script, so the demo needs no account.
 */
import { anthropicModel, failoverModel, type Model, openaiModel, replayModel } from '@agentbox/agent';

export type Provider = 'openai' | 'anthropic';
export const PROVIDERS: readonly Provider[] = ['openai', 'anthropic'];

export interface ModelFlags {
  provider?: string | undefined;
  'model-url'?: string | undefined;
  model?: string | undefined;
  'fallback-provider'?: string | undefined;
  'fallback-url'?: string | undefined;
  'fallback-model'?: string | undefined;
  replay?: string | undefined;
}

const DEFAULT_MODELS: Record<Provider, string> = { openai: 'gpt-4o-mini', anthropic: 'claude-haiku-4-5' };

/** A mistake in the model flags, told to the user as a usage error. */
export class ModelFlagError extends Error {}

function keyFor(provider: Provider, env: NodeJS.ProcessEnv, fallback: boolean): string | undefined {
  const own = provider === 'openai' ? env.OPENAI_API_KEY : env.ANTHROPIC_API_KEY;
  return (fallback ? env.FALLBACK_API_KEY : env.MODEL_API_KEY) || own || undefined;
}

function providerOf(name: string | undefined, flag: string): Provider | undefined {
  if (name === undefined) return undefined;
  if (!(PROVIDERS as readonly string[]).includes(name))
    throw new ModelFlagError(`${flag} must be one of ${PROVIDERS.join(', ')}, not "${name}"`);
  return name as Provider;
}

function sdkModel(
  provider: Provider,
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
export function chooseModel(flags: ModelFlags, env: NodeJS.ProcessEnv): Model | undefined {
  if (flags.replay) return replayModel(flags.replay);
  let provider = providerOf(flags.provider, '--provider');
  provider ??=
    flags['model-url'] || env.OPENAI_API_KEY || env.MODEL_API_KEY
      ? 'openai'
      : env.ANTHROPIC_API_KEY
        ? 'anthropic'
        : undefined;
  if (provider === undefined) return undefined;
  const key = keyFor(provider, env, false) ?? (flags['model-url'] ? 'no-key' : undefined);
  if (key === undefined)
    throw new ModelFlagError(
      `--provider ${provider} needs a key (${provider === 'openai' ? 'OPENAI_API_KEY' : 'ANTHROPIC_API_KEY'} or MODEL_API_KEY) or a --model-url`,
    );
  const primary = sdkModel(provider, flags['model-url'], flags.model, key);
  const fallbackProvider = providerOf(flags['fallback-provider'], '--fallback-provider');
  if (fallbackProvider === undefined) {
    if (flags['fallback-url'] || flags['fallback-model'])
      throw new ModelFlagError('--fallback-url and --fallback-model need --fallback-provider');
    return failoverModel({ primary });
  }
  const fallbackKey = keyFor(fallbackProvider, env, true) ?? (flags['fallback-url'] ? 'no-key' : undefined);
  if (fallbackKey === undefined)
    throw new ModelFlagError(
      `--fallback-provider ${fallbackProvider} needs a key (FALLBACK_API_KEY or the provider's) or a --fallback-url`,
    );
  return failoverModel({
    primary,
    fallback: sdkModel(fallbackProvider, flags['fallback-url'], flags['fallback-model'], fallbackKey),
  });
}
