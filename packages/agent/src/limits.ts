/** Budgets of a run (steps, tokens, estimated cost, wall-clock time) and the price table behind the cost. */
import { InvalidArgumentError } from '@agentbox/core';
import type { TokenUsage } from './model-types.js';

export interface RunLimits {
  /** Model turns (default 25). */
  maxSteps?: number;
  /** Input tokens over all turns, as the providers count them. */
  maxInputTokens?: number;
  /** Output tokens over all turns; each request also asks for no more than what is left. */
  maxOutputTokens?: number;
  /** Estimated cost in US dollars, from the price table; a turn of a model without a price stops the run. */
  maxCostUsd?: number;
  /** Wall-clock time of the run: a model request or command still going when it runs out is stopped. */
  maxWallClockMs?: number;
}

/** US dollars per million tokens. */
export interface ModelPrice {
  inputPerMillionUsd: number;
  outputPerMillionUsd: number;
}

/**
 * List prices of common models (USD per million tokens, standard tier, no caching discounts):
 * an estimate for budget stops, not a bill. Override or extend with `prices`.
 */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = {
  'gpt-4o': { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 },
  'gpt-4o-mini': { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 },
  'gpt-4.1': { inputPerMillionUsd: 2, outputPerMillionUsd: 8 },
  'gpt-4.1-mini': { inputPerMillionUsd: 0.4, outputPerMillionUsd: 1.6 },
  'gpt-4.1-nano': { inputPerMillionUsd: 0.1, outputPerMillionUsd: 0.4 },
  'o4-mini': { inputPerMillionUsd: 1.1, outputPerMillionUsd: 4.4 },
  'claude-opus-4': { inputPerMillionUsd: 15, outputPerMillionUsd: 75 },
  'claude-sonnet-4': { inputPerMillionUsd: 3, outputPerMillionUsd: 15 },
  'claude-3-7-sonnet': { inputPerMillionUsd: 3, outputPerMillionUsd: 15 },
  'claude-3-5-haiku': { inputPerMillionUsd: 0.8, outputPerMillionUsd: 4 },
  'claude-haiku-4-5': { inputPerMillionUsd: 1, outputPerMillionUsd: 5 },
  // Offline models cost nothing.
  scripted: { inputPerMillionUsd: 0, outputPerMillionUsd: 0 },
  replay: { inputPerMillionUsd: 0, outputPerMillionUsd: 0 },
};

/**
 * The price of a model named `provider:model` or `model`: an exact entry, else the longest entry
 * its name starts with (`claude-sonnet-4-20250514` is priced as `claude-sonnet-4`).
 */
export function priceOf(
  model: string,
  prices: Readonly<Record<string, ModelPrice>> = DEFAULT_PRICES,
): ModelPrice | undefined {
  const bare = model.includes(':') ? model.slice(model.indexOf(':') + 1) : model;
  for (const key of [model, bare]) if (prices[key]) return prices[key];
  let best: string | undefined;
  for (const key of Object.keys(prices))
    if ((bare.startsWith(`${key}-`) || bare.startsWith(`${key}.`)) && key.length > (best?.length ?? 0))
      best = key;
  return best === undefined ? undefined : prices[best];
}

export function costOf(usage: TokenUsage, price: ModelPrice): number {
  return (
    (usage.inputTokens * price.inputPerMillionUsd + usage.outputTokens * price.outputPerMillionUsd) / 1e6
  );
}

/** Limits must be positive numbers (integers where they count); a typo is an error, not a missing cap. */
export function checkLimits(limits: RunLimits): void {
  const issues: string[] = [];
  const known = ['maxSteps', 'maxInputTokens', 'maxOutputTokens', 'maxCostUsd', 'maxWallClockMs'];
  for (const [key, value] of Object.entries(limits)) {
    if (!known.includes(key)) issues.push(`limits.${key}: unknown limit; known: ${known.join(', ')}`);
    else if (value === undefined) continue;
    else if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value))
      issues.push(`limits.${key}: must be a positive number`);
    else if (key !== 'maxCostUsd' && !Number.isInteger(value))
      issues.push(`limits.${key}: must be an integer`);
  }
  if (issues.length)
    throw new InvalidArgumentError(`invalid run limits: ${issues.join('; ')}`, {
      operation: 'runAgent',
      issues,
    });
}
