/** The retry and fallback policy on its own, with models that fail on cue and a recorded clock. */
import { describe, expect, it, vi } from 'vitest';
import {
  failoverModel,
  type Model,
  type ModelNotice,
  ModelRequestError,
  retryAfterFromHeaders,
} from '../src/index.js';

/** A model that throws the given errors in turn, then answers with its name. */
function flaky(name: string, failures: (Error | undefined)[]): Model & { calls: number } {
  const model = {
    name,
    calls: 0,
    async complete() {
      const failure = failures[model.calls++];
      if (failure) throw failure;
      return { content: name, toolCalls: [] };
    },
  };
  return model;
}
const unavailable = (retryAfterMs?: number) =>
  new ModelRequestError('busy', 'http://x', {
    httpStatus: 429,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });

describe('failoverModel', () => {
  it('backs off exponentially without a retry-after, and waits what a retry-after asks', async () => {
    const waits: number[] = [];
    const primary = flaky('p', [unavailable(), unavailable(), unavailable(1500), undefined]);
    const model = failoverModel({
      primary,
      retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 150 },
      sleep: async (ms) => void waits.push(ms),
    });
    const turn = await model.complete({ messages: [], tools: [] });
    expect(turn).toMatchObject({ content: 'p', model: 'p' });
    expect(waits).toHaveLength(3);
    expect(waits[0]).toBeGreaterThanOrEqual(75); // 100 ± 25 % jitter
    expect(waits[0]).toBeLessThanOrEqual(125);
    expect(waits[1]).toBeGreaterThanOrEqual(112); // 200 capped at 150, ± 25 %
    expect(waits[1]).toBeLessThanOrEqual(188);
    expect(waits[2]).toBe(1500);
  });

  it('stays on the fallback for the cool-down, then tries the primary again and says so', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const notices: ModelNotice[] = [];
      const notify = (n: ModelNotice) => notices.push(n);
      const primary = flaky('p', [unavailable(60_000)]);
      const fallback = flaky('f', []);
      const model = failoverModel({ primary, fallback, primaryCooldownMs: 10_000, sleep: async () => {} });
      expect((await model.complete({ messages: [], tools: [], notify })).content).toBe('f');
      expect(primary.calls).toBe(1); // a retry-after over the limit: no second attempt
      expect((await model.complete({ messages: [], tools: [], notify })).content).toBe('f');
      expect(primary.calls).toBe(1);
      vi.setSystemTime(Date.now() + 10_001);
      expect((await model.complete({ messages: [], tools: [], notify })).content).toBe('p');
      expect(notices.map((n) => n.type)).toEqual(['fallback', 'primary_restored']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('an abort while waiting to retry is ABORTED, not a fallback', async () => {
    const fallback = flaky('f', []);
    const model = failoverModel({ primary: flaky('p', [unavailable(1000)]), fallback });
    const error = await model
      .complete({ messages: [], tools: [], signal: AbortSignal.timeout(50) })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ABORTED' });
    expect(fallback.calls).toBe(0);
  });
});

describe('retryAfterFromHeaders', () => {
  const headers = (h: Record<string, string>) => new Headers(h);
  it('reads retry-after-ms first, then retry-after as seconds or as an HTTP date', () => {
    expect(retryAfterFromHeaders(headers({ 'retry-after-ms': '250', 'retry-after': '9' }))).toBe(250);
    expect(retryAfterFromHeaders(headers({ 'retry-after': '2' }))).toBe(2000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterFromHeaders(headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:30 GMT' }), now)).toBe(
      30_000,
    );
    expect(retryAfterFromHeaders(headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterFromHeaders(headers({}))).toBeUndefined();
  });
});
