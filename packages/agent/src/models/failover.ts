/**
 * Retries with backoff that honour `retry-after`, and a fallback model that takes over when the
 * primary stays unavailable. The SDKs' own retries are off (they would wait out a retry-after of
 * an hour); here a wait longer than `maxRetryAfterMs` sends the turn to the fallback at once.
 */
import { AbortedError, InvalidArgumentError, isAgentboxError } from '@agentbox/core';
import type { Model, ModelRequest, ModelTurn } from '../model-types.js';

export interface RetryPolicy {
  /** Attempts per model and turn, the first included (default 3). */
  maxAttempts?: number;
  /** First backoff delay without a retry-after; it doubles each attempt, with jitter (default 500). */
  baseDelayMs?: number;
  /** Longest backoff delay of our own (default 8000). */
  maxDelayMs?: number;
  /** Longest retry-after we wait for; a longer one moves on to the fallback (default 30 000). */
  maxRetryAfterMs?: number;
}

export interface FailoverOptions {
  primary: Model;
  fallback?: Model;
  retry?: RetryPolicy;
  /** After a switch, turns go to the fallback for this long before the primary is tried again (default 60 000). */
  primaryCooldownMs?: number;
  /** For tests: how to wait. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Unavailable (429, 5xx, timeout, refused) is worth another try; a refused key or a bad request is not. */
export function isRetryableModelError(error: unknown): boolean {
  return isAgentboxError(error) && error.code === 'MODEL_UNAVAILABLE';
}

function sleepFor(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const nameOf = (model: Model, fallback: string) => model.name ?? fallback;

export function failoverModel(options: FailoverOptions): Model {
  const policy = {
    maxAttempts: options.retry?.maxAttempts ?? 3,
    baseDelayMs: options.retry?.baseDelayMs ?? 500,
    maxDelayMs: options.retry?.maxDelayMs ?? 8000,
    maxRetryAfterMs: options.retry?.maxRetryAfterMs ?? 30_000,
  };
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1)
    throw new InvalidArgumentError('retry.maxAttempts must be an integer of at least 1', {
      operation: 'failoverModel',
    });
  const sleep = options.sleep ?? sleepFor;
  const cooldownMs = options.primaryCooldownMs ?? 60_000;
  const primaryName = nameOf(options.primary, 'primary');
  let onFallbackUntil = 0;

  /** One model with retries; undefined when it stayed unavailable (the error in `failed`). */
  async function attempt(
    model: Model,
    request: ModelRequest,
    name: string,
  ): Promise<{ turn: ModelTurn } | { failed: unknown }> {
    let last: unknown;
    for (let attemptNo = 1; attemptNo <= policy.maxAttempts; attemptNo++) {
      try {
        return { turn: await model.complete(request) };
      } catch (error) {
        if (!isRetryableModelError(error) || request.signal?.aborted) throw error;
        last = error;
        if (attemptNo === policy.maxAttempts) break;
        const retryAfterMs = (error as { retryAfterMs?: number }).retryAfterMs;
        if (retryAfterMs !== undefined && retryAfterMs > policy.maxRetryAfterMs) break;
        const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attemptNo - 1));
        const delayMs = retryAfterMs ?? Math.round(backoff * (0.75 + Math.random() * 0.5));
        request.notify?.({
          type: 'retry',
          model: name,
          attempt: attemptNo,
          delayMs,
          error: (error as Error).message,
        });
        try {
          await sleep(delayMs, request.signal);
        } catch (reason) {
          throw new AbortedError('the model request was aborted while waiting to retry', {
            operation: 'complete',
            cause: reason,
          });
        }
      }
    }
    return { failed: last };
  }

  return {
    name: options.fallback
      ? `${primaryName} (fallback ${nameOf(options.fallback, 'fallback')})`
      : primaryName,
    async complete(request): Promise<ModelTurn> {
      const { fallback } = options;
      const usePrimary = !fallback || Date.now() >= onFallbackUntil;
      if (usePrimary && onFallbackUntil !== 0) {
        onFallbackUntil = 0;
        request.notify?.({ type: 'primary_restored', model: primaryName });
      }
      if (usePrimary) {
        const first = await attempt(options.primary, request, primaryName);
        if ('turn' in first) return withModel(first.turn, primaryName);
        if (!fallback) throw first.failed;
        const to = nameOf(fallback, 'fallback');
        request.notify?.({ type: 'fallback', from: primaryName, to, error: (first.failed as Error).message });
        onFallbackUntil = Date.now() + cooldownMs;
      }
      const second = await attempt(fallback!, request, nameOf(fallback!, 'fallback'));
      if ('turn' in second) return withModel(second.turn, nameOf(fallback!, 'fallback'));
      throw second.failed;
    },
  };
}

const withModel = (turn: ModelTurn, name: string): ModelTurn =>
  turn.model ? turn : { ...turn, model: name };
